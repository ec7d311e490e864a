extends "res://tests/support/processor_test_case.gd"
## wait_for_task() and wait_all() on the main thread and on workers, and bounded stops.


func test_wait_for_task_on_the_main_thread_delivers_meanwhile() -> void:
	var processor := new_processor(2)
	var delivered := []
	var first := processor.submit_task(func() -> int: return 1, func(r: int) -> void: delivered.append(r))
	var slow := processor.submit_task(func() -> int:
		OS.delay_msec(30)
		return 2, func(r: int) -> void: delivered.append(r))
	assert_eq(processor.wait_for_task(slow), 2)
	# No frame has passed, yet both callbacks ran: the wait delivered them.
	delivered.sort()
	assert_eq(delivered, [1, 2])
	assert_eq(processor.get_task_status(first), AsyncTaskProcessor.STATUS_COMPLETED)
	assert_eq(processor.wait_for_task(slow), null, "a delivered result is not kept by id")
	processor.queue_free()


func test_wait_for_task_times_out_with_null() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var queued := processor.submit_task(func() -> int: return 5)
	var started := Time.get_ticks_msec()
	assert_eq(processor.wait_for_task(queued, 20), null)
	assert_true(Time.get_ticks_msec() - started >= 20, "it waited for the timeout")
	assert_eq(processor.get_task_status(queued), AsyncTaskProcessor.STATUS_PENDING)
	gate.post()
	assert_eq(processor.wait_for_task(queued, 10000), 5)
	expect_error("AsyncTaskProcessor.wait_for_task: there is no task 987654")
	assert_eq(processor.wait_for_task(987654), null)
	processor.queue_free()


func test_a_task_waiting_for_a_queued_task_runs_it_instead_of_deadlocking() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var inner := processor.submit_task(func() -> int: return 5)
	var outer := processor.run(func() -> int: return processor.wait_for_task(inner) * 10, AsyncTaskProcessor.PRIORITY_HIGH)
	gate.post()
	# The only worker runs `outer` first (high priority); it waits for `inner`, queued behind it.
	assert_eq(await outer.finished, 50)
	processor.queue_free()


func test_wait_all_delivers_everything_and_honours_its_timeout() -> void:
	var processor := new_processor(2)
	var delivered := AtomicCounter.new()
	for i in 50:
		processor.submit_task(func() -> int: return i, func(_r: int) -> void:
			delivered.increment()
			if delivered.get_count() == 50:
				# A callback that submits more: wait_all waits for that too.
				processor.submit_task(func() -> void: pass, func() -> void: delivered.increment()))
	assert_true(processor.wait_all())
	assert_eq(delivered.get_count(), 51)
	var stats := processor.get_stats()
	assert_eq([stats.pending, stats.running, stats.completed], [0, 0, 51])
	var gate := hold_worker(processor)
	assert_false(processor.wait_all(20), "a held worker makes wait_all time out")
	gate.post()
	assert_true(processor.wait_all(10000))
	processor.queue_free()


func test_wait_all_from_inside_a_task_is_refused() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.wait_all: called from one of its own tasks")
	assert_eq(await processor.run(func() -> bool: return processor.wait_all()).finished, false)
	processor.queue_free()


func test_wait_from_another_thread_blocks_until_done() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var id := processor.submit_task(func() -> Array: return [1, 2])
	var thread := Thread.new()
	thread.start(func() -> Array: return [processor.wait_for_task(id), processor.wait_all(10000)])
	gate.post()
	assert_eq(thread.wait_to_finish(), [[1, 2], true])
	processor.queue_free()


func test_a_bounded_stop_leaves_a_task_that_ignores_cancellation() -> void:
	var processor := new_processor(1)
	processor.stop_timeout_msec = 30
	var release := Semaphore.new()
	var started := Semaphore.new()
	var id := processor.submit_task(func() -> void:
		started.post()
		release.wait())  # Never looks at is_cancelled().
	started.wait()
	var before := Time.get_ticks_msec()
	processor.stop_workers(true)  # Warns that one task is still running, and returns.
	assert_true(Time.get_ticks_msec() - before < 5000, "the stop did not wait for the task")
	assert_false(processor.is_running())
	release.post()
	assert_true(await frames_until(func() -> bool:
		return processor.get_task_status(id) == AsyncTaskProcessor.STATUS_CANCELLED))
	assert_true(processor.start_workers(1), "the processor starts again")
	assert_eq(await processor.run(func() -> int: return 7).finished, 7)
	processor.queue_free()
