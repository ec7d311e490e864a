extends "res://tests/support/processor_test_case.gd"
## AsyncTaskProcessor.run() and TaskHandle: await, status, result, error, progress, cancel.


func test_await_run_returns_the_result_on_the_main_thread() -> void:
	var processor := new_processor()
	var handle := processor.run(func() -> Array: return [OS.get_thread_caller_id(), 6 * 7])
	assert_true(handle.id > 0)
	var result: Array = await handle.finished
	assert_eq(OS.get_thread_caller_id(), OS.get_main_thread_id(), "await resumes on the main thread")
	assert_ne(result[0], OS.get_main_thread_id(), "the task ran on a worker")
	assert_eq(result[1], 42)
	assert_true(handle.is_done())
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	assert_eq(handle.get_result(), result)
	assert_eq(handle.get_error(), "")
	assert_eq(handle.get_progress(), 1.0)
	assert_eq(str(handle), "TaskHandle(id=%d, completed)" % handle.id)
	processor.queue_free()


func test_finished_is_emitted_exactly_once_for_every_end() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var completed := processor.run(func() -> int: return 1)
	var failed := processor.run(func(needs_an_argument: int) -> int: return needs_an_argument)
	var cancelled := processor.run(func() -> int: return 3)
	var emitted := {}
	for handle: TaskHandle in [completed, failed, cancelled]:
		var id := handle.id  # Not the handle: a lambda holding it would keep it alive (a cycle).
		emitted[id] = []
		handle.finished.connect(func(result: Variant) -> void: emitted[id].append(result))
	assert_true(cancelled.cancel())
	assert_false(cancelled.cancel(), "a cancelled task cannot be cancelled again")
	expect_error("Godot could not call it: it needs 1 argument(s), it was given 0")
	gate.post()
	assert_true(await frames_until(func() -> bool: return processor.get_stats().pending == 0 and processor.get_stats().running == 0))
	for i in 5:
		await get_tree().process_frame
	assert_eq(emitted[completed.id], [1])
	assert_eq(emitted[failed.id], [null])
	assert_eq(emitted[cancelled.id], [null])
	assert_eq(failed.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true("needs 1 argument" in failed.get_error(), failed.get_error())
	assert_eq(cancelled.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(cancelled.get_result(), null)
	assert_false(completed.cancel(), "a completed task cannot be cancelled")
	processor.queue_free()


func test_cancel_a_running_task_through_its_handle() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> String:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_msec(1)
		return "stopped early")
	assert_true(await frames_until(func() -> bool: return handle.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	assert_true(handle.cancel())
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	processor.queue_free()


func test_progress_is_visible_through_the_handle() -> void:
	var processor := new_processor(1)
	var step := Semaphore.new()
	var reported := Semaphore.new()
	var handle := processor.run(func() -> void:
		for value in [0.25, 0.5, 0.75]:
			AsyncTaskProcessor.report_progress(value)
			reported.post()
			step.wait())
	var seen := []
	for i in 3:
		reported.wait()
		seen.append(handle.get_progress())
		step.post()
	await handle.finished
	assert_eq(seen, [0.25, 0.5, 0.75])
	assert_eq(handle.get_progress(), 1.0)
	processor.queue_free()


func test_run_with_bad_input_returns_a_failed_handle_that_still_finishes() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.run: the task Callable is invalid")
	var invalid := processor.run(Callable())
	assert_eq(invalid.id, -1)
	assert_eq(invalid.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true("AsyncTaskProcessor.run" in invalid.get_error(), invalid.get_error())
	assert_eq(await invalid.finished, null, "an await on a refused task resumes")
	processor.stop_workers()
	expect_error("AsyncTaskProcessor.run: the workers are not running")
	var stopped := processor.run(func() -> int: return 1)
	assert_eq(stopped.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(await stopped.finished, null)
	assert_false(stopped.cancel())
	processor.queue_free()


func test_a_handle_outlives_its_processor_and_keeps_its_result() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> Dictionary: return {"a": [1]})
	await handle.finished
	processor.free()  # Inside the delivery that resumed this await: allowed.
	assert_false(is_instance_valid(processor))
	var result: Dictionary = handle.get_result()
	assert_eq(result, {"a": [1]})
	result.a.append(2)
	assert_eq(handle.get_result(), {"a": [1]}, "each get_result() is its own copy")


func test_freeing_the_processor_releases_awaiters() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var handle := processor.run(func() -> int: return 1)
	var emitted := []
	handle.finished.connect(func(result: Variant) -> void: emitted.append(result))
	processor.free()
	gate.post()
	assert_true(await frames_until(func() -> bool: return emitted == [null]),
			"finished(null) once the processor is gone, at the next drain")


func test_leaving_the_tree_keeps_tasks_running_and_delivering() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var handle := processor.run(func() -> int: return 1)
	var emitted := []
	handle.finished.connect(func(result: Variant) -> void: emitted.append(result))
	remove_child(processor)
	gate.post()
	assert_true(await frames_until(func() -> bool: return emitted == [1]),
			"outside the tree it still delivers, every frame")
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	assert_true(processor.is_running())
	processor.free()


func test_status_constants_keep_their_numbers_and_names() -> void:
	# The numbers are the binding's own, not core's: scripts that stored them keep working.
	assert_eq([AsyncTaskProcessor.STATUS_UNKNOWN, AsyncTaskProcessor.STATUS_PENDING,
			AsyncTaskProcessor.STATUS_RUNNING, AsyncTaskProcessor.STATUS_COMPLETED,
			AsyncTaskProcessor.STATUS_FAILED, AsyncTaskProcessor.STATUS_CANCELLED], [0, 1, 2, 3, 4, 5])
	var completed := TaskHandle.create_pending()
	var failed := TaskHandle.create_pending()
	var cancelled := TaskHandle.create_pending()
	assert_eq(completed.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	assert_eq(str(completed), "TaskHandle(id=%d, pending)" % completed.id)
	assert_true(completed.complete(1))
	assert_true(failed.fail("no"))
	assert_true(cancelled.cancel())
	var ends := [[completed, AsyncTaskProcessor.STATUS_COMPLETED, "completed"],
			[failed, AsyncTaskProcessor.STATUS_FAILED, "failed"],
			[cancelled, AsyncTaskProcessor.STATUS_CANCELLED, "cancelled"]]
	for end: Array in ends:
		var handle: TaskHandle = end[0]
		assert_eq(handle.get_status(), end[1])
		assert_eq(str(handle), "TaskHandle(id=%d, %s)" % [handle.id, end[2]])
	var processor := new_processor(1)
	var gate := Semaphore.new()
	var running := processor.run(func() -> int:
		gate.wait()
		return 7)
	assert_true(await frames_until(func() -> bool: return running.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	assert_eq(str(running), "TaskHandle(id=%d, running)" % running.id)
	gate.post()
	assert_eq(await running.wait(), 7)
	processor.queue_free()
