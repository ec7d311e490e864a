extends SceneTree
## Run by `cargo xtask test` as `godot --headless --editor -s` (Godot reloads a GDExtension only
## in the editor, and only one marked `reloadable`): reloads ThreadKit while a processor's workers
## are idle, then checks that its instances and classes still work. (Not the object count: the
## editor creates and frees objects of its own around a reload, a few more or fewer each run.)
## Prints `PASS hot_reload`, or `FAIL hot_reload: ` and what went wrong.

const EXTENSION := "res://addons/threadkit/threadkit.gdextension"

var _failures: Array[String] = []


func _initialize() -> void:
	_reload_with_idle_workers()


func _check(ok: bool, what: String) -> void:
	if not ok:
		_failures.append(what)


func _reload_with_idle_workers() -> void:
	await process_frame
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 2
	processor.stop_timeout_msec = 1234
	root.add_child(processor)
	_check(processor.wait_for_task(processor.submit_task(func() -> int: return 41)) == 41, "a task ran before the reload")
	_check(processor.get_stats().workers == 2, "two idle workers before the reload")
	var counter := AtomicCounter.new()
	counter.add(5)

	var status := GDExtensionManager.reload_extension(EXTENSION)

	_check(status == GDExtensionManager.LOAD_STATUS_OK, "reload_extension returned %d, not LOAD_STATUS_OK" % status)
	_check(is_instance_valid(processor) and processor is AsyncTaskProcessor, "the processor is still an AsyncTaskProcessor")
	_check(processor.stop_timeout_msec == 1234, "exported properties are kept")
	# Godot recreates each instance, so state that is not an exported property starts afresh:
	# the old workers were joined when the old instance was freed, and none run now.
	_check(not processor.is_running(), "the recreated processor has no workers yet")
	_check(counter.get_count() == 0, "the recreated counter starts at 0")
	_check(processor.start_workers(2), "start_workers() after the reload")
	_check(processor.wait_for_task(processor.submit_task(func() -> int: return 42)) == 42, "a task runs after the reload")
	var ran := []
	_check(MainThreadDispatcher.dispatch(func() -> void: ran.append(true)), "dispatch() after the reload")
	MainThreadDispatcher.process_queue()
	_check(ran == [true], "dispatched work runs after the reload")
	_check(AtomicCounter.new().increment() == 1, "a new instance works")
	processor.free()
	if _failures.is_empty():
		print("PASS hot_reload")
	else:
		print("FAIL hot_reload: ", "; ".join(_failures))
	quit(0 if _failures.is_empty() else 1)
