extends "res://tests/support/processor_test_case.gd"
## Every value that crosses threads is a copy: for each Variant type, at each boundary
## (SharedResource in and out, ThreadSafeQueue push and pop, a task's result, a group's results,
## MainThreadDispatcher.call_blocking's result), changing either side afterwards never changes
## the other. Arrays, Dictionaries and Packed*Arrays are copied, nested ones included; Objects are
## shared by reference by design (the same object arrives).

var _object := RefCounted.new()


func _on_sample_signal() -> void:
	pass


signal sample_signal


## A fresh sample of Variant type [param type]; the same contents on every call. Containers hold
## nested containers, so changes deep inside are checked too.
func _sample(type: int) -> Variant:
	match type:
		TYPE_NIL: return null
		TYPE_BOOL: return true
		TYPE_INT: return 42
		TYPE_FLOAT: return 2.5
		TYPE_STRING: return "text"
		TYPE_VECTOR2: return Vector2(1, 2)
		TYPE_VECTOR2I: return Vector2i(1, 2)
		TYPE_RECT2: return Rect2(1, 2, 3, 4)
		TYPE_RECT2I: return Rect2i(1, 2, 3, 4)
		TYPE_VECTOR3: return Vector3(1, 2, 3)
		TYPE_VECTOR3I: return Vector3i(1, 2, 3)
		TYPE_TRANSFORM2D: return Transform2D(0.5, Vector2(1, 2))
		TYPE_VECTOR4: return Vector4(1, 2, 3, 4)
		TYPE_VECTOR4I: return Vector4i(1, 2, 3, 4)
		TYPE_PLANE: return Plane(Vector3.UP, 2)
		TYPE_QUATERNION: return Quaternion(Vector3.UP, 0.5)
		TYPE_AABB: return AABB(Vector3.ONE, Vector3(2, 3, 4))
		TYPE_BASIS: return Basis(Vector3.UP, 0.5)
		TYPE_TRANSFORM3D: return Transform3D(Basis(Vector3.UP, 0.5), Vector3(1, 2, 3))
		TYPE_PROJECTION: return Projection.create_perspective(60, 1.5, 0.1, 100)
		TYPE_COLOR: return Color(0.1, 0.2, 0.3)
		TYPE_STRING_NAME: return &"name"
		TYPE_NODE_PATH: return ^"a/b:c"
		TYPE_RID: return rid_from_int64(42)
		TYPE_OBJECT: return _object
		TYPE_CALLABLE: return _on_sample_signal
		TYPE_SIGNAL: return sample_signal
		TYPE_DICTIONARY:
			var typed: Dictionary[String, PackedByteArray] = {"bytes": PackedByteArray([1, 2])}
			return {"list": [1, PackedInt32Array([2])], "packed": PackedByteArray([3]),
					"typed": typed}
		TYPE_ARRAY:
			var typed: Array[PackedInt64Array] = [PackedInt64Array([5])]
			return [1, {"bytes": PackedByteArray([1, 2])}, PackedStringArray(["s"]), typed]
		TYPE_PACKED_BYTE_ARRAY: return PackedByteArray([1, 2, 3])
		TYPE_PACKED_INT32_ARRAY: return PackedInt32Array([1, 2, 3])
		TYPE_PACKED_INT64_ARRAY: return PackedInt64Array([1, 2, 3])
		TYPE_PACKED_FLOAT32_ARRAY: return PackedFloat32Array([1.5, 2.5])
		TYPE_PACKED_FLOAT64_ARRAY: return PackedFloat64Array([1.5, 2.5])
		TYPE_PACKED_STRING_ARRAY: return PackedStringArray(["a", "b"])
		TYPE_PACKED_VECTOR2_ARRAY: return PackedVector2Array([Vector2(1, 2)])
		TYPE_PACKED_VECTOR3_ARRAY: return PackedVector3Array([Vector3(1, 2, 3)])
		TYPE_PACKED_COLOR_ARRAY: return PackedColorArray([Color.RED])
		TYPE_PACKED_VECTOR4_ARRAY: return PackedVector4Array([Vector4(1, 2, 3, 4)])
	assert(false, "no sample for type %d" % type)
	return null


## Changes [param value] in place, where its type can change in place at all (containers, at every
## level), and returns whether it could. Values of other types are copies already in GDScript.
func _mutate(value: Variant) -> bool:
	match typeof(value):
		TYPE_DICTIONARY:
			value["list"].append("more")
			value["list"][1].append(9)
			value["packed"].append(9)
			value["typed"]["bytes"].append(9)
			value["new key"] = 1
			return true
		TYPE_ARRAY:
			value[1]["bytes"].append(9)
			value[2].append("more")
			value[3][0].append(9)
			value.append("more")
			return true
		TYPE_PACKED_BYTE_ARRAY, TYPE_PACKED_INT32_ARRAY, TYPE_PACKED_INT64_ARRAY:
			value.append(9)
			value[0] = 7
			return true
		TYPE_PACKED_FLOAT32_ARRAY, TYPE_PACKED_FLOAT64_ARRAY:
			value.append(9.5)
			return true
		TYPE_PACKED_STRING_ARRAY:
			value.append("more")
			return true
		TYPE_PACKED_VECTOR2_ARRAY:
			value.append(Vector2.ONE)
			return true
		TYPE_PACKED_VECTOR3_ARRAY:
			value.append(Vector3.ONE)
			return true
		TYPE_PACKED_COLOR_ARRAY:
			value.append(Color.BLUE)
			return true
		TYPE_PACKED_VECTOR4_ARRAY:
			value.append(Vector4.ONE)
			return true
	return false


## Problems with [param got], a value of type [param type] on one side of a boundary after the
## other side changed its own: it must equal an unchanged sample, keep its type (nested typed
## containers included), and for an Object be the very same object.
func _check_copy(type: int, got: Variant, where: String) -> Array[String]:
	var problems: Array[String] = []
	var name := "%s %s" % [type_string(type), where]
	if typeof(got) != type:
		problems.append("%s: arrived as %s" % [name, type_string(typeof(got))])
		return problems
	if type == TYPE_OBJECT:
		if not is_same(got, _object):
			problems.append("%s: a different object arrived" % name)
		return problems
	if got != _sample(type):
		problems.append("%s: changed to %s" % [name, var_to_str(got)])
	if type == TYPE_ARRAY and got[3].get_typed_builtin() != TYPE_PACKED_INT64_ARRAY:
		problems.append("%s: the nested typed Array lost its type" % name)
	if type == TYPE_DICTIONARY and got["typed"].get_typed_value_builtin() != TYPE_PACKED_BYTE_ARRAY:
		problems.append("%s: the nested typed Dictionary lost its type" % name)
	return problems


## Checks a boundary for every type. [param cross] takes a value and returns what arrives on the
## other side; it is called twice per type: once the sender changes its value after sending (the
## arrival must not change), once the receiver changes what arrived (the sender's must not).
func _check_boundary(where: String, cross: Callable, skip: Array = []) -> void:
	var problems: Array[String] = []
	for type in range(TYPE_NIL, TYPE_MAX):
		if type in skip:
			continue
		var sent: Variant = _sample(type)
		var got: Variant = cross.call(sent)
		if _mutate(sent):
			problems.append_array(_check_copy(type, got, where + ", sender changed its value"))
		sent = _sample(type)
		got = cross.call(sent)
		_mutate(got)
		problems.append_array(_check_copy(type, sent, where + ", receiver changed its copy"))
	assert_eq(problems, [] as Array[String])


func test_the_samples_cover_every_variant_type_and_are_changed_in_place() -> void:
	for type in range(TYPE_NIL, TYPE_MAX):
		var value: Variant = _sample(type)
		assert_eq(typeof(value), type, type_string(type))
		var alias: Variant = value
		if _mutate(value):
			# Godot shares these by reference: the change shows through the alias, and deep inside.
			assert_eq(alias, value, "%s is shared by reference" % type_string(type))
			assert_ne(value, _sample(type), "%s changed" % type_string(type))


func test_shared_resource_write_and_read() -> void:
	var store := SharedResource.new()
	_check_boundary("SharedResource.write_value/read_value", func(value: Variant) -> Variant:
		store.write_value("k", value)
		return store.read_value("k"))
	_check_boundary("SharedResource.update_value", func(value: Variant) -> Variant:
		store.update_value("k", func(_old: Variant) -> Variant: return value)
		var seen := []
		store.update_value("k", func(old: Variant) -> Variant:
			seen.append(old)
			return _sample(TYPE_INT))
		return seen[0])
	_check_boundary("SharedResource.batch_update/get_all_data", func(value: Variant) -> Variant:
		store.batch_update({"k": value})
		return store.get_all_data()["k"])


func test_thread_safe_queue_push_and_pop_across_a_thread() -> void:
	var queue := ThreadSafeQueue.new()
	# Pushed here, popped by a thread; null is refused by the queue by design.
	_check_boundary("ThreadSafeQueue pushed on the main thread", func(value: Variant) -> Variant:
		assert_true(queue.push(value))
		var popper := Thread.new()
		popper.start(func() -> Variant: return queue.pop())
		return popper.wait_to_finish(), [TYPE_NIL])
	# Pushed by a thread, popped here: the thread keeps the value it pushed and is handed the
	# change to make, so each side changes its own.
	_check_boundary("ThreadSafeQueue pushed on a thread", func(value: Variant) -> Variant:
		var pusher := Thread.new()
		pusher.start(func() -> void: assert_true(queue.push(value)))
		pusher.wait_to_finish()
		return queue.pop(1000), [TYPE_NIL])


func test_a_task_result() -> void:
	var processor := new_processor(2)
	_check_boundary("AsyncTaskProcessor.wait_for_task result", func(value: Variant) -> Variant:
		return processor.wait_for_task(processor.submit_task(func() -> Variant: return value), 5000))
	_check_boundary("TaskHandle.get_result", func(value: Variant) -> Variant:
		var handle := processor.run(func() -> Variant: return value)
		processor.wait_for_task(handle.id, 5000)
		return handle.get_result())
	processor.queue_free()


func test_a_group_result() -> void:
	var processor := new_processor(2)
	_check_boundary("AsyncTaskProcessor.submit_group results", func(value: Variant) -> Variant:
		var handle := processor.submit_group(func(_i: int) -> Variant: return value, 1)
		processor.wait_for_task(handle.id, 5000)
		return handle.get_result()[0])
	processor.queue_free()


func test_a_call_blocking_result() -> void:
	# The thread asks the main thread for the value; the main thread runs the call while it
	# waits here, draining the dispatcher.
	_check_boundary("MainThreadDispatcher.call_blocking", func(value: Variant) -> Variant:
		var asker := Thread.new()
		asker.start(func() -> Variant:
			return MainThreadDispatcher.call_blocking(func() -> Variant: return value, 5000))
		while asker.is_alive():
			MainThreadDispatcher.process_queue()
			OS.delay_usec(100)
		return asker.wait_to_finish())


func test_array_duplicate_copies_nested_packed_arrays() -> void:
	# What deep_copy relies on: a deep duplicate copies the packed arrays inside, too.
	var bytes := PackedByteArray([1])
	var nested := {"a": [bytes]}
	var copy: Dictionary = nested.duplicate(true)
	bytes.append(2)
	assert_eq(nested["a"][0], PackedByteArray([1, 2]), "the original shares its packed array")
	assert_eq(copy["a"][0], PackedByteArray([1]), "the copy does not")


func test_a_50_mb_packed_byte_array_through_a_queue() -> void:
	var queue := ThreadSafeQueue.new()
	var big := PackedByteArray()
	big.resize(50 * 1024 * 1024)
	big[0] = 1
	big[big.size() - 1] = 2
	var start := Time.get_ticks_usec()
	assert_true(queue.push(big))
	var push_usec := Time.get_ticks_usec() - start
	var consumer := Thread.new()
	consumer.start(func() -> Array:
		var popped_at := Time.get_ticks_usec()
		var got: PackedByteArray = queue.pop()
		var pop_usec := Time.get_ticks_usec() - popped_at
		var seen := [got.size(), got[0], got[got.size() - 1]]
		got[0] = 9  # The consumer's own copy: this write copies the buffer for it alone.
		return [seen, pop_usec])
	var result: Array = consumer.wait_to_finish()
	assert_eq(result[0], [50 * 1024 * 1024, 1, 2])
	assert_eq(big[0], 1, "the consumer's change stays the consumer's")
	big[1] = 5
	assert_eq(queue.size(), 0)
	# A copy shares the buffer until one side writes to it, so the trip itself moves no bytes:
	# far below the time a single 50 MB copy takes.
	assert_true(push_usec + result[1] < 20000, "push %d us, pop %d us" % [push_usec, result[1]])
