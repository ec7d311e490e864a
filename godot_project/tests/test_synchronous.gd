extends "res://tests/support/processor_test_case.gd"
## AsyncTaskProcessor.synchronous: tasks run on the main thread during delivery, with the same
## methods, signals and handles; per-frame limits bound them; main-thread waits run them; a change
## applies to later submissions.

const NULL_CALL := "Nonexistent function 'explode' in base 'Nil'"


class Gate extends RefCounted:
	signal opened

	func await_opened() -> int:
		await opened
		return 1


static func on_main_thread() -> bool:
	return OS.get_thread_caller_id() == OS.get_main_thread_id()


## A processor that is synchronous from the start: it enters the tree without workers.
func new_synchronous_processor() -> AsyncTaskProcessor:
	var processor := AsyncTaskProcessor.new()
	processor.synchronous = true
	add_child(processor)
	return processor


func test_tasks_run_on_the_main_thread_during_delivery_with_the_same_signals() -> void:
	var processor := new_synchronous_processor()
	assert_true(processor.synchronous)
	assert_false(processor.is_running(), "no workers started")
	var on_main := AtomicCounter.new()
	var callbacks := AtomicCounter.new()
	var completed := []
	processor.task_completed.connect(func(id: int, result: Variant) -> void: completed.append(result))
	for i in 10:
		processor.submit_task(func() -> int:
			if on_main_thread():
				on_main.increment()
			return i,
			func(_result: int) -> void: callbacks.increment())
	var handle := processor.run(func() -> bool: return on_main_thread())
	assert_eq(on_main.get_count(), 0, "nothing runs at submit")
	assert_eq(processor.get_stats().pending, 11)
	assert_eq(await handle.finished, true, "the handle's task ran on the main thread")
	assert_eq(on_main.get_count(), 10)
	assert_eq(callbacks.get_count(), 10)
	assert_eq(completed.size(), 11)
	assert_eq(completed.slice(0, 10), range(10), "in submission order")
	var stats := processor.get_stats()
	assert_eq([stats.submitted, stats.completed, stats.workers], [11, 11, 0])


func test_per_frame_limits_bound_how_many_tasks_run_per_delivery() -> void:
	var processor := new_synchronous_processor()
	processor.max_callbacks_per_frame = 3
	processor.frame_budget_usec = 0  # The count alone bounds it: no time budget on a loaded machine.
	var ran := AtomicCounter.new()
	for i in 10:
		processor.submit_task(func() -> void: ran.increment())
	# No frame passes between these calls: each delivery runs (and delivers) at most 3.
	assert_eq(processor.process_completed(), 3)
	assert_eq(ran.get_count(), 3)
	assert_eq(processor.process_completed(), 3)
	assert_eq(ran.get_count(), 6)
	processor.max_callbacks_per_frame = 0
	assert_eq(processor.process_completed(), 4)
	assert_eq(ran.get_count(), 10)


func test_main_thread_waits_run_the_tasks() -> void:
	var processor := new_synchronous_processor()
	var id := processor.submit_task(func() -> bool: return on_main_thread())
	assert_eq(processor.wait_for_task(id), true)
	var with_timeout := processor.submit_task(func() -> int: return 5)
	assert_eq(processor.wait_for_task(with_timeout, 1000), 5, "also with a timeout")
	var ran := AtomicCounter.new()
	for i in 20:
		processor.submit_task(func() -> void:
			ran.increment()
			# Submitted by a running task: runs at a later delivery, still within wait_all.
			processor.submit_task(func() -> void: ran.increment()))
	assert_true(processor.wait_all())
	assert_eq(ran.get_count(), 40)
	assert_eq(processor.get_stats().pending, 0)


func test_a_group_runs_its_calls_in_index_order_on_the_main_thread() -> void:
	var processor := new_synchronous_processor()
	var order := []
	var handle := processor.submit_group(func(i: int) -> int:
		order.append(i if on_main_thread() else -1)
		return i * i, 6)
	assert_eq(await handle.finished, [0, 1, 4, 9, 16, 25])
	assert_eq(order, [0, 1, 2, 3, 4, 5])


func test_is_cancelled_and_report_progress_work_inside() -> void:
	var processor := new_synchronous_processor()
	var seen := []
	var box := []
	var handle := processor.run(func() -> int:
		AsyncTaskProcessor.report_progress(0.25)
		seen.append(AsyncTaskProcessor.is_cancelled())
		box[0].cancel()
		seen.append(AsyncTaskProcessor.is_cancelled())
		return 1)
	box.append(handle)
	await handle.finished
	box.clear()  # The handle's task keeps its Callable (for its label), which captures box.
	assert_eq(seen, [false, true])
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(handle.get_progress(), 0.25)
	assert_false(AsyncTaskProcessor.is_cancelled(), "no task runs here any more")


func test_a_script_error_fails_the_task() -> void:
	var processor := new_synchronous_processor()
	var handle := processor.run(func() -> int:
		var nothing: Variant = null
		nothing.explode()
		return 42)
	expect_error(NULL_CALL)
	expect_error("AsyncTaskProcessor: task %d failed: SCRIPT ERROR" % handle.id)
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(NULL_CALL in handle.get_error(), handle.get_error())


func test_a_coroutine_is_still_refused() -> void:
	var processor := new_synchronous_processor()
	var gate := Gate.new()
	var handle := processor.run(gate.await_opened)
	expect_error("is a coroutine (it uses await)")
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)


func test_a_change_applies_to_tasks_submitted_after_it() -> void:
	var processor := new_processor(1)
	var where := func() -> String: return "main" if on_main_thread() else "worker"
	var before := processor.submit_task(where)
	assert_eq(processor.wait_for_task(before), "worker")
	processor.synchronous = true
	var queued_for_main := processor.run(where)
	processor.synchronous = false
	var queued_for_worker := processor.run(where)
	assert_eq(await queued_for_main.finished, "main", "queued before the change back: still main")
	if not queued_for_worker.is_done():
		await queued_for_worker.finished
	assert_eq(queued_for_worker.get_result(), "worker")
	assert_true(processor.is_running(), "the workers kept running throughout")


func test_turned_off_later_the_next_submit_starts_the_workers() -> void:
	var processor := new_synchronous_processor()
	processor.synchronous = false
	var handle := processor.run(func() -> bool: return on_main_thread())
	assert_eq(await handle.finished, false)
	assert_true(processor.is_running())


func test_stop_and_free_cancel_queued_synchronous_tasks() -> void:
	var processor := new_synchronous_processor()
	var cancelled := []
	processor.task_cancelled.connect(func(id: int) -> void: cancelled.append(id))
	var ran := AtomicCounter.new()
	for i in 3:
		processor.submit_task(func() -> void: ran.increment())
	processor.stop_workers()
	assert_true(await frames_until(func() -> bool: return cancelled.size() == 3))
	assert_eq(ran.get_count(), 0)
	var handle := processor.run(func() -> int: return 1)
	assert_eq(handle.id > 0, true, "still accepted: it needs no worker")
	processor.free()
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(ran.get_count(), 0)


func test_paused_tree_holds_synchronous_tasks_unless_process_always() -> void:
	var processor := new_synchronous_processor()
	var ran := AtomicCounter.new()
	processor.submit_task(func() -> void: ran.increment())
	get_tree().paused = true
	await get_tree().process_frame
	await get_tree().process_frame
	var while_paused := ran.get_count()
	processor.process_mode = Node.PROCESS_MODE_ALWAYS
	await get_tree().process_frame
	await get_tree().process_frame
	var always := ran.get_count()
	get_tree().paused = false
	assert_eq(while_paused, 0, "a pausable processor runs nothing during a pause")
	assert_eq(always, 1, "PROCESS_MODE_ALWAYS runs them during a pause")


func test_a_synchronous_task_may_free_its_processor() -> void:
	var processor := new_synchronous_processor()
	var ran := AtomicCounter.new()
	var handle := processor.run(func() -> int:
		processor.free()
		return 7)
	processor.submit_task(func() -> void: ran.increment())  # Queued behind it: cancelled.
	assert_eq(await handle.finished, 7, "its handle still gets its result")
	assert_eq(ran.get_count(), 0)
	assert_false(is_instance_valid(processor))


func test_another_thread_waiting_for_a_synchronous_task_gets_it_at_the_next_delivery() -> void:
	var processor := new_synchronous_processor()
	var id := processor.submit_task(func() -> bool: return on_main_thread())
	var thread := Thread.new()
	thread.start(func() -> Variant: return processor.wait_for_task(id))
	# No frame passes until the thread waits: a result is delivered once, then forgotten.
	for i in 100000:
		if processor.get_stats().waiting == 1:
			break
		OS.delay_usec(100)
	assert_eq(processor.get_stats().waiting, 1)
	assert_true(await frames_until(func() -> bool: return not thread.is_alive()))
	assert_eq(thread.wait_to_finish(), true, "the main thread ran it; the waiting thread got it")


func test_priorities_order_synchronous_tasks_most_urgent_first() -> void:
	var processor := new_synchronous_processor()
	var order := []
	var levels := {"low": AsyncTaskProcessor.PRIORITY_LOW, "normal": AsyncTaskProcessor.PRIORITY_NORMAL,
			"high": AsyncTaskProcessor.PRIORITY_HIGH}
	for round in 3:
		for level: String in ["low", "normal", "high"]:
			var name := "%s%d" % [level, round]
			processor.submit_task(func() -> void: order.append(name), Callable(), levels[level])
	processor.wait_all()
	assert_eq(order, ["high0", "high1", "high2", "normal0", "normal1", "normal2", "low0", "low1", "low2"])


func test_delayed_tasks_of_a_synchronous_processor_run_on_the_main_thread_in_delay_order() -> void:
	var processor := new_synchronous_processor()
	var order := []
	for delay in [90, 60, 30]:
		processor.run_delayed(func() -> void: order.append([delay, on_main_thread()]), delay)
	var cancelled := processor.run_delayed(func() -> void: order.append("never"), 30)
	assert_eq(processor.get_stats().delayed, 4)
	assert_true(cancelled.cancel())
	assert_eq(processor.get_stats().delayed, 3)
	assert_true(processor.wait_all(), "the main-thread wait wakes when each falls due, and runs it")
	assert_eq(order, [[30, true], [60, true], [90, true]])
	var stats := processor.get_stats()
	assert_eq([stats.delayed, stats.pending, stats.completed, stats.cancelled, stats.workers], [0, 0, 3, 1, 0])


func test_freeing_a_synchronous_processor_cancels_its_delayed_tasks() -> void:
	var processor := new_synchronous_processor()
	var ran := AtomicCounter.new()
	var handle := processor.run_delayed(func() -> void: ran.increment(), 60_000)
	processor.free()
	assert_eq(await handle.wait(), null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(ran.get_count(), 0)


func test_a_worker_waiting_for_a_synchronous_task_leaves_it_to_the_main_thread() -> void:
	var processor := new_processor(1)
	var gate := Semaphore.new()
	var ids := []
	var waiter := processor.run(func() -> Variant:
		gate.wait()
		return processor.wait_for_task(ids[0]))
	assert_true(await frames_until(func() -> bool: return waiter.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	processor.synchronous = true  # The waiter stays on its worker; what follows is the main thread's.
	var local := processor.run(func() -> bool: return on_main_thread())
	ids.append(local.id)
	gate.post()
	# No frame passes until the worker waits: a result is delivered once, then forgotten.
	for i in 100000:
		if processor.get_stats().waiting == 1 or waiter.is_done():
			break
		OS.delay_usec(100)
	assert_eq(await waiter.wait(), true, "the main thread ran it, the worker got its result")
	assert_eq(local.get_result(), true)
	processor.queue_free()
