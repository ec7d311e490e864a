extends "res://tests/support/processor_test_case.gd"
## Errors say shortly what was wrong: a value by its type and size, never whole; a call refused for
## an argument's type by the parameter and both types; and nothing internal is callable.
## docs/reliability.md lists each case.

const BIG := 50_000_000
const LONG_TEXT := 1_000_000
## Far above any message ThreadKit writes, far below a value printed whole.
const SHORT_LINE := 1000


## Records the length of every error logged while it is installed, from any thread.
class Lines extends Logger:
	var _mutex := Mutex.new()
	var longest := 0
	var count := 0
	var texts: Array[String] = []
	## The source file each error names in its "at:" line.
	var files: Array[String] = []
	## The function each error names in its "at:" line.
	var functions: Array[String] = []

	func _log_error(function: String, file: String, _line: int, code: String, rationale: String,
			_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]) -> void:
		if error_type == ERROR_TYPE_WARNING:
			return
		_mutex.lock()
		count += 1
		longest = maxi(longest, code.length() + rationale.length())
		texts.append((code + " " + rationale).left(SHORT_LINE))
		files.append(file)
		functions.append(function)
		_mutex.unlock()


## Counts the calls of its string form, which no error message may build.
class Loud extends RefCounted:
	var calls: AtomicCounter

	func _init(counter: AtomicCounter) -> void:
		calls = counter

	func _to_string() -> String:
		calls.increment()
		return "Loud"


## A script object a worker may ask for its script: not a node.
class Scaler extends RefCounted:
	func scale(factor: int) -> int:
		return factor * 2


func _takes_int(count: int) -> int:
	return count


func _takes_string(label: String) -> String:
	return label


func _typed_callback(result: int) -> void:
	assert_true(false, "never called with %s" % type_string(typeof(result)))


func test_a_50_mb_value_or_a_long_text_in_an_error_is_named_by_type_and_size() -> void:
	var lines := Lines.new()
	OS.add_logger(lines)
	var big := PackedByteArray()
	big.resize(BIG)
	var long_text := "x".repeat(LONG_TEXT)
	var started := Time.get_ticks_msec()
	var shared := SharedResource.new()
	expect_error("SharedResource.write_value: a key must be a String, StringName or int, not PackedByteArray of 50000000 elements")
	shared.write_value(big, 1)
	var nodes := ThreadSafeNodeManager.new()
	expect_error("ThreadSafeNodeManager.register_node: the name is PackedByteArray of 50000000 elements, not a String; pass the node's name as a String or StringName.")
	assert_false(nodes.register_node(big, self))
	expect_error("ThreadSafeNodeManager.get_managed_node: the name is PackedByteArray of 50000000 elements")
	assert_eq(nodes.get_managed_node(big), null)
	assert_true(nodes.register_node(long_text, self))
	var other := Node.new()
	expect_error("ThreadSafeNodeManager.register_node: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" (1000000 characters) is already registered")
	assert_false(nodes.register_node(long_text, other))
	expect_error("ThreadContext.assert_main_thread: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" (1000000 characters) must run on the main thread")
	var name_lengths := run_threads(1, func(_i: int) -> int:
		ThreadContext.set_thread_name(long_text)
		ThreadContext.assert_main_thread(long_text)
		return ThreadContext.get_thread_name().length())
	assert_eq(name_lengths, [64], "a thread name is kept to 64 characters")
	var processor := new_processor(1)
	var id := processor.submit_task(func() -> PackedByteArray: return big, _typed_callback)
	expect_error("AsyncTaskProcessor: the callback of task %d was not called: Godot could not call it: argument 1 has the wrong type: parameter \"result\" takes int, it was given PackedByteArray" % id)
	processor.wait_for_task(id)
	var elapsed := Time.get_ticks_msec() - started
	OS.remove_logger(lines)
	assert_eq(lines.count, 6, "every error above was logged once: %s" % [lines.texts])
	assert_true(lines.longest < SHORT_LINE, "the longest error has %d characters" % lines.longest)
	assert_true(elapsed < 5000, "a generous bound: printing the value took seconds; this took %d ms" % elapsed)
	other.free()
	nodes.free()
	processor.queue_free()


func test_an_object_in_an_error_is_named_by_class_and_id_without_its_string_form() -> void:
	var calls := AtomicCounter.new()
	var loud := Loud.new(calls)
	var id := loud.get_instance_id()
	var shared := SharedResource.new()
	var nodes := ThreadSafeNodeManager.new()
	var processor := new_processor(1)
	expect_error("SharedResource.write_value: a key must be a String, StringName or int, not RefCounted object #%d" % id)
	expect_error("ThreadSafeNodeManager.register_node: the name is RefCounted object #%d, not a String" % id)
	run_threads(1, func(_i: int) -> void:
		shared.write_value(loud, 1)
		nodes.register_node(loud, self))
	var task := processor.submit_task(func() -> Loud: return loud, _typed_callback)
	expect_error("AsyncTaskProcessor: the callback of task %d was not called: Godot could not call it: argument 1 has the wrong type: parameter \"result\" takes int, it was given RefCounted" % task)
	processor.wait_for_task(task)
	assert_eq(calls.get_count(), 0, "no message built the object's string form")
	nodes.free()
	processor.queue_free()


func test_a_call_refused_for_an_argument_type_names_the_parameter_and_both_types() -> void:
	var lines := Lines.new()
	OS.add_logger(lines)
	var counter := AtomicCounter.new()
	var processor := new_processor(2)
	# godot-rust prints its own error for a Rust method it could not convert an argument for.
	expect_error("godot-rust function call failed: AtomicCounter::add()")
	var rust_method := processor.run(counter.add.bind("x"))
	var script_method := processor.run(_takes_int.bind("x"))
	var scaler := Scaler.new()  # Held: a Callable keeps no reference to its object.
	var object_method := processor.run(scaler.scale.bind("x"))
	var group := processor.submit_group(_takes_string, 2)
	var lambda := processor.submit_group(func(index: String) -> String: return index, 1)
	var callback := processor.submit_task(func() -> String: return "x", _typed_callback)
	assert_true(processor.wait_all(10000), "every task ended and was delivered")
	assert_true("argument 1 has the wrong type: parameter \"delta\" takes int, it was given String" in rust_method.get_error(), rust_method.get_error())
	# On a worker, a node's own methods go unnamed: Godot lets only the main thread ask a node in
	# the tree for its script. The types are there all the same.
	assert_true("argument 1 has the wrong type: it takes int, it was given String" in script_method.get_error(), script_method.get_error())
	assert_true("argument 1 has the wrong type: it takes String, it was given int" in group.get_error(), group.get_error())
	assert_true("argument 1 has the wrong type: parameter \"factor\" takes int, it was given String" in object_method.get_error(), object_method.get_error())
	assert_true("argument 1 has the wrong type: it takes String, it was given int" in lambda.get_error(), lambda.get_error())
	for handle: TaskHandle in [rust_method, script_method, object_method, group, lambda]:
		expect_error(handle.get_error())
	expect_error("the callback of task %d was not called: Godot could not call it: argument 1 has the wrong type: parameter \"result\" takes int, it was given String" % callback)
	expect_error("MainThreadDispatcher.dispatch: a dispatched call failed: Godot could not call it: argument 1 has the wrong type: parameter \"delta\" takes int, it was given String")
	MainThreadDispatcher.dispatch(counter.add.bind("x"))
	while MainThreadDispatcher.pending_count() > 0:
		MainThreadDispatcher.process_queue()
	expect_error("MainThreadDispatcher.call_blocking: the call failed: Godot could not call it: argument 1 has the wrong type: parameter \"count\" takes int, it was given String")
	assert_eq(MainThreadDispatcher.call_blocking(_takes_int.bind("x")), null)
	expect_error("SharedResource.update_value: Godot could not call it: argument 1 has the wrong type: parameter \"delta\" takes int, it was given Nil")
	assert_eq(SharedResource.new().update_value("k", counter.add), null)
	expect_error("ReadWriteLock.with_read: Godot could not call it: argument 1 has the wrong type: parameter \"label\" takes String, it was given int")
	ReadWriteLock.new().with_read(_takes_string.bind(5))
	OS.remove_logger(lines)
	for text in lines.texts:
		assert_false("call error" in text or "1337" in text, "a call error code shown: " + text)
	assert_eq(counter.get_count(), 0)
	processor.queue_free()


func test_no_internal_method_is_exposed_and_every_parameter_has_its_name() -> void:
	var classes: Array[String] = []
	for cls in ClassDB.get_class_list():
		if ClassDB.class_get_api_type(cls) == ClassDB.API_EXTENSION:
			classes.append(cls)
	assert_true(classes.has("AsyncTaskProcessor") and classes.has("MainThreadDispatcher"), str(classes))
	for cls in classes:
		for method in ClassDB.class_get_method_list(cls, true):
			# GDScript's `for` calls an object's iterator protocol by these names (ThreadSafeQueue).
			var iterator_protocol: bool = method.name in ["_iter_init", "_iter_next", "_iter_get"]
			assert_false(method.name.begins_with("_") and not iterator_protocol, "%s.%s is callable from GDScript" % [cls, method.name])
			for arg in method.args:
				assert_true(arg.name.is_valid_identifier(), "%s.%s has a parameter named '%s'" % [cls, method.name, arg.name])
		for signal_info in ClassDB.class_get_signal_list(cls, true):
			for arg in signal_info.args:
				assert_true(arg.name.is_valid_identifier(), "signal %s.%s has a parameter named '%s'" % [cls, signal_info.name, arg.name])
	for internal in ["_on_tree_exiting", "_deliver_frame", "deliver_frame", "stop_on_exit", "process", "_process", "ready", "_ready"]:
		assert_false(ClassDB.class_has_method("AsyncTaskProcessor", internal, true), "AsyncTaskProcessor." + internal)
		assert_false(ClassDB.class_has_method("MainThreadDispatcher", internal, true), "MainThreadDispatcher." + internal)
	var processor := new_processor(1)
	assert_false(processor.has_method("_on_tree_exiting") or processor.has_method("_deliver_frame"))
	processor.queue_free()


## An error's "at:" line names the Rust file whose code found the problem (for a bad timeout,
## the file of the method that took it), not the one file every report passes through.
func test_an_error_is_located_where_it_was_found() -> void:
	var lines := Lines.new()
	OS.add_logger(lines)
	expect_error("ThreadLocal.create: the factory Callable is not valid")
	assert_true(ThreadLocal.create(Callable()) == null)
	expect_error("ThreadSafeQueue.pop: timeout_ms -5 is not valid")
	assert_eq(ThreadSafeQueue.create().pop(-5), null)
	OS.remove_logger(lines)
	assert_eq(lines.files.size(), 2, str(lines.texts))
	if lines.files.size() == 2:
		assert_true(lines.files[0].ends_with("thread_local.rs"), lines.files[0])
		assert_true(lines.files[1].ends_with("thread_safe_queue.rs"), lines.files[1])


## A refused submit's error (also kept as its handle's error) names the class and method in its
## "at:" line too, as every other error does.
func test_a_refused_submit_is_located_at_its_class_and_method() -> void:
	var processor := AsyncTaskProcessor.new()
	add_child(processor)
	var lines := Lines.new()
	OS.add_logger(lines)
	expect_error("AsyncTaskProcessor.submit_task: the task Callable is invalid")
	assert_eq(processor.submit_task(Callable()), -1)
	expect_error("AsyncTaskProcessor.run: priority 7 is not PRIORITY_LOW")
	var handle := processor.run(func() -> int: return 1, 7)
	OS.remove_logger(lines)
	assert_eq(lines.functions, ["AsyncTaskProcessor.submit_task", "AsyncTaskProcessor.run"] as Array[String])
	assert_true(handle.get_error().begins_with("AsyncTaskProcessor.run: priority 7"), handle.get_error())
	processor.queue_free()
