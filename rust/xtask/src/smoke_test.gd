extends SceneTree
## ThreadKit package smoke test. `cargo xtask package` and `cargo xtask test` write it into a new,
## empty project beside the unzipped addon and run it with `godot --headless -s`. It prints
## SMOKE OK and exits 0 only when every class it touches works there with no other setup.

var _failures: Array[String] = []


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame  # Nodes can join the tree once the main loop runs.
	_check_atomic_counter()
	await _check_async_task_processor()
	await _check_main_thread_dispatcher()
	_check_shared_resource()
	_check_thread_safe_queue()
	if _failures.is_empty():
		print("SMOKE OK")
		quit(0)
	else:
		for failure in _failures:
			printerr("SMOKE FAILED: " + failure)
		quit(1)


func _expect(ok: bool, failure: String) -> void:
	if not ok:
		_failures.append(failure)


## Runs [param body] on [param count] threads at once and waits for them all.
func _on_threads(count: int, body: Callable) -> void:
	var threads: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body)
		threads.append(thread)
	for thread in threads:
		thread.wait_to_finish()


func _check_atomic_counter() -> void:
	var counter := AtomicCounter.new()
	_on_threads(4, func() -> void:
		for n in 10_000:
			counter.increment())
	_expect(counter.get_count() == 40_000,
		"AtomicCounter: 4 threads x 10000 increments counted %d" % counter.get_count())


func _check_async_task_processor() -> void:
	var processor := AsyncTaskProcessor.new()
	root.add_child(processor)  # Starts its workers.
	var handle := processor.run(func() -> Array: return [6 * 7, OS.get_thread_caller_id()])
	var result = await handle.wait()
	_expect(result is Array and result.size() == 2 and result[0] == 42,
		"AsyncTaskProcessor.run: awaited %s, expected [42, <worker thread id>]" % [result])
	_expect(result is Array and result.size() == 2 and result[1] != OS.get_main_thread_id(),
		"AsyncTaskProcessor.run: the task ran on the main thread")
	processor.queue_free()
	await process_frame


func _check_main_thread_dispatcher() -> void:
	var ran_on: Array[int] = []
	_on_threads(1, func() -> void:
		MainThreadDispatcher.dispatch(func() -> void: ran_on.append(OS.get_thread_caller_id())))
	for frame in 100:  # The dispatcher ThreadKit installs drains once per frame.
		if not ran_on.is_empty():
			break
		await process_frame
	_expect(ran_on.size() == 1 and ran_on[0] == OS.get_main_thread_id(),
		"MainThreadDispatcher.dispatch: ran on threads %s, expected once on the main thread" % [ran_on])


func _check_shared_resource() -> void:
	var shared := SharedResource.new()
	shared.write_value("gold", 10)
	_on_threads(4, func() -> void:
		for n in 1000:
			shared.update_value("gold", func(old: int) -> int: return old + 1))
	_expect(shared.read_value("gold") == 4010,
		"SharedResource.update_value: 4 threads x 1000 updates of 10 gave %s" % [shared.read_value("gold")])


func _check_thread_safe_queue() -> void:
	var queue := ThreadSafeQueue.create(4)
	var producer := Thread.new()
	producer.start(func() -> void:
		for i in 100:
			queue.push(i)
		queue.close())
	var received := []
	var item = queue.pop()
	while item != null:  # pop() returns null only once the queue is closed and empty.
		received.append(item)
		item = queue.pop()
	producer.wait_to_finish()
	_expect(received == range(100),
		"ThreadSafeQueue: received %d items, expected 0..99 in order" % received.size())
