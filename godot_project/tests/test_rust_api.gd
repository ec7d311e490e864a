extends "res://tests/support/processor_test_case.gd"
## AsyncTaskProcessor::spawn, the Rust API, driven through the test-only ThreadKitTestProbe (what
## another gdext crate would write).


func test_spawned_work_runs_on_a_worker_and_continues_on_the_main_thread() -> void:
	var processor := new_processor(2)
	var got := []
	var id := ThreadKitTestProbe.spawn_sum(processor, 100, func(sum: int, off_main: bool, on_main: bool) -> void:
		got.append([sum, off_main, on_main]))
	assert_true(id > 0)
	assert_true(await frames_until(func() -> bool: return got.size() == 1))
	assert_eq(got, [[5050, true, true]])
	assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_COMPLETED)
	processor.queue_free()


func test_a_panicking_rust_task_fails_and_skips_its_continuation() -> void:
	var processor := new_processor(1)
	var called := []
	var failed := []
	processor.task_failed.connect(func(id: int, message: String) -> void: failed.append([id, message]))
	expect_error("probe panic")
	var id := ThreadKitTestProbe.spawn_panic(processor, func() -> void: called.append(true))
	assert_true(await frames_until(func() -> bool: return failed.size() == 1))
	assert_eq(failed[0][0], id)
	assert_true("the task panicked: probe panic" in failed[0][1], failed[0][1])
	assert_eq(called, [])
	var results := []
	ThreadKitTestProbe.spawn_sum(processor, 3, func(sum: int, _a: bool, _b: bool) -> void: results.append(sum))
	assert_true(await frames_until(func() -> bool: return results == [6]), "the worker lives on")
	processor.queue_free()


func test_spawn_on_a_stopped_processor_returns_an_error() -> void:
	var processor := new_processor(1)
	processor.stop_workers()
	assert_eq(ThreadKitTestProbe.spawn_sum(processor, 3, func(_s: int, _a: bool, _b: bool) -> void: pass), -1)
	processor.queue_free()


func test_a_pending_rust_continuation_is_dropped_on_the_main_thread_when_the_processor_is_freed_elsewhere() -> void:
	var processor := AsyncTaskProcessor.new()  # Outside the tree: any thread may free it.
	processor.start_workers(1)
	var before: Array = ThreadKitTestProbe.continuation_drops()
	var called := []
	var id := ThreadKitTestProbe.spawn_with_drop_probe(processor, func() -> void: called.append(true))
	assert_true(id > 0)
	var thread := Thread.new()
	thread.start(func() -> void: processor.free())
	thread.wait_to_finish()
	assert_eq(ThreadKitTestProbe.continuation_drops(), before, "not dropped on the freeing thread")
	assert_true(await frames_until(func() -> bool: return ThreadKitTestProbe.continuation_drops() != before))
	assert_eq(ThreadKitTestProbe.continuation_drops(), [before[0] + 1, before[1]], "dropped once, on the main thread")
	assert_eq(called, [], "a freed processor calls no continuation")
