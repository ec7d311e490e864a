extends "res://tests/support/processor_test_case.gd"
## ThreadContext on the main thread, on AsyncTaskProcessor workers and on other threads.


func _describe() -> Array:
	return [ThreadContext.is_main_thread(), ThreadContext.get_context(), ThreadContext.get_thread_name(),
			ThreadContext.get_thread_id() == OS.get_thread_caller_id()]


func test_on_the_main_thread() -> void:
	assert_eq(_describe(), [true, ThreadContext.CONTEXT_MAIN, "main", true])
	assert_eq(ThreadContext.get_main_thread_id(), OS.get_main_thread_id())
	assert_eq(ThreadContext.get_thread_id(), OS.get_main_thread_id())
	assert_true(ThreadContext.assert_main_thread("test"))
	expect_error("ThreadContext.set_thread_name: the main thread is always named \"main\"")
	ThreadContext.set_thread_name("renamed")
	assert_eq(ThreadContext.get_thread_name(), "main")


func test_on_a_processor_worker() -> void:
	var processor := new_processor(1)
	var seen: Array = await processor.run(_describe).finished
	assert_eq(seen, [false, ThreadContext.CONTEXT_WORKER, "threadkit-worker-0", true])
	expect_error("ThreadContext.set_thread_name: AsyncTaskProcessor workers keep their names")
	var renamed: String = await processor.run(func() -> String:
		ThreadContext.set_thread_name("mine")
		return ThreadContext.get_thread_name()).finished
	assert_eq(renamed, "threadkit-worker-0")
	processor.queue_free()


func test_on_other_threads() -> void:
	var results := run_threads(2, func(i: int) -> Array:
		var before := _describe()
		var id := ThreadContext.get_thread_id()
		ThreadContext.set_thread_name("loader-%d" % i)
		return [before, ThreadContext.get_thread_name(), "thread-%d" % id == before[2]])
	for i in 2:
		assert_eq(results[i][0].slice(0, 2), [false, ThreadContext.CONTEXT_OTHER])
		assert_true(results[i][2], "an unnamed thread is thread-<id>: %s" % results[i][0][2])
		assert_eq(results[i][1], "loader-%d" % i, "names are per thread")


func test_assert_main_thread_elsewhere_reports_the_operation_and_thread() -> void:
	expect_error("ThreadContext.assert_main_thread: \"spawn_enemy\" must run on the main thread, but ran on worker-x")
	var ok: Array = run_threads(1, func(_i: int) -> bool:
		ThreadContext.set_thread_name("worker-x")
		return ThreadContext.assert_main_thread("spawn_enemy"))
	assert_eq(ok, [false])
