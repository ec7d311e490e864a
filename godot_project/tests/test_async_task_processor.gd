extends "res://tests/support/processor_test_case.gd"

var _processor: AsyncTaskProcessor


func test_results_reach_callbacks_on_the_main_thread() -> void:
	var processor := new_processor()
	var main_id := OS.get_thread_caller_id()
	var results := {}
	var callback_threads := []
	for i in 20:
		var id := processor.submit_task(func() -> int: return i * i, func(result: int) -> void:
			results[i] = result
			callback_threads.append(OS.get_thread_caller_id()))
		assert_true(id > 0, "submit returns an id > 0")
	assert_true(await frames_until(func() -> bool: return results.size() == 20))
	for i in 20:
		assert_eq(results.get(i), i * i)
	assert_true(callback_threads.all(func(t: int) -> bool: return t == main_id), "every callback ran on the main thread")
	processor.queue_free()


func test_tasks_run_off_the_main_thread() -> void:
	var processor := new_processor()
	var main_id := OS.get_thread_caller_id()
	var worker_ids := []
	processor.submit_task(func() -> int: return OS.get_thread_caller_id(), func(tid: int) -> void: worker_ids.append(tid))
	assert_true(await frames_until(func() -> bool: return worker_ids.size() == 1))
	assert_ne(worker_ids[0], main_id)
	processor.queue_free()


func test_signals_and_callback_without_argument() -> void:
	var processor := new_processor()
	var completed := []
	var called := [false]
	var all_done := [0]
	processor.task_completed.connect(func(id: int, result: Variant) -> void: completed.append([id, result]))
	processor.all_tasks_completed.connect(func() -> void: all_done[0] += 1)
	var id := processor.submit_task(func() -> String: return "hi", func() -> void: called[0] = true)
	assert_true(await frames_until(func() -> bool: return completed.size() == 1))
	assert_eq(completed[0], [id, "hi"])
	assert_true(called[0], "a callback that takes no argument is called without one")
	assert_true(all_done[0] >= 1, "all_tasks_completed emitted")
	assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_COMPLETED)
	processor.queue_free()


func test_cancel_pending_and_running_tasks() -> void:
	var processor := new_processor(1)
	var cancelled := []
	processor.task_cancelled.connect(func(id: int) -> void: cancelled.append(id))
	var running := processor.submit_task(func() -> int:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_msec(1)
		return 1)
	var pending := processor.submit_task(func() -> int: return 2)
	assert_true(await frames_until(func() -> bool:
		return processor.get_task_status(running) == AsyncTaskProcessor.STATUS_RUNNING))
	assert_eq(processor.get_task_status(pending), AsyncTaskProcessor.STATUS_PENDING)
	assert_true(processor.cancel_task(pending))
	assert_true(processor.cancel_task(running))
	assert_true(await frames_until(func() -> bool: return cancelled.size() == 2))
	assert_eq(processor.get_task_status(pending), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(processor.get_task_status(running), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_false(processor.cancel_task(pending), "cannot cancel twice")
	assert_eq(processor.get_stats().cancelled, 2)
	processor.queue_free()


func test_high_priority_runs_first() -> void:
	var processor := new_processor(1)
	var order := []
	var gate := Semaphore.new()
	processor.submit_task(func() -> void: gate.wait())
	for tag in [1, 2]:
		processor.submit_task(func() -> int: return tag, func(t: int) -> void: order.append(t))
	for tag in [3, 4]:
		processor.submit_task(func() -> int: return tag, func(t: int) -> void: order.append(t), AsyncTaskProcessor.PRIORITY_HIGH)
	gate.post()
	assert_true(await frames_until(func() -> bool: return order.size() == 4))
	assert_eq(order, [3, 4, 1, 2])
	processor.queue_free()


func test_progress_is_reported_from_inside_the_task() -> void:
	var processor := new_processor(1)
	var gate := Semaphore.new()
	var seen := []
	processor.submit_task(func() -> void:
		AsyncTaskProcessor.report_progress(0.25)
		seen.append(AsyncTaskProcessor.is_cancelled())
		gate.post())
	gate.wait()
	assert_eq(seen, [false])
	expect_error("AsyncTaskProcessor.report_progress")
	AsyncTaskProcessor.report_progress(0.5)  # Outside a task: an error, nothing else.
	assert_false(AsyncTaskProcessor.is_cancelled())
	processor.queue_free()


func test_freed_callback_target_is_skipped_and_counted_100_times() -> void:
	var processor := new_processor()
	var gate := Semaphore.new()
	for i in 100:
		var target := Node.new()
		processor.submit_task(func() -> int:
			gate.wait()
			return i, target.set_name.bind().unbind(1))
		target.free()
	for i in 100:
		gate.post()
	assert_true(await frames_until(func() -> bool: return processor.get_stats().completed == 100))
	await get_tree().process_frame
	assert_eq(processor.get_stats().dropped_callbacks, 100)
	processor.queue_free()


func test_a_task_whose_object_was_freed_is_dropped_and_counted_and_the_worker_lives_on() -> void:
	var processor := new_processor(1)
	var cancelled := []
	processor.task_cancelled.connect(func(id: int) -> void: cancelled.append(id))
	var gate := Semaphore.new()
	processor.submit_task(func() -> void: gate.wait())
	var doomed := Node.new()
	var ids := []
	for i in 3:  # Work a level queued on a long-lived processor, then the level went away.
		ids.append(processor.submit_task(doomed.get_name))
	var handle := processor.run(doomed.get_name)
	doomed.free()
	gate.post()
	assert_eq(await handle.finished, null)
	assert_true(await frames_until(func() -> bool: return cancelled.size() == 4))
	for id in ids:
		assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(processor.get_stats().dropped_tasks, 4, "dropped and counted, with no error")
	var results := []
	processor.submit_task(func() -> int: return 5, func(r: int) -> void: results.append(r))
	assert_true(await frames_until(func() -> bool: return results == [5]), "the worker still runs tasks")
	processor.queue_free()


func test_invalid_inputs_are_refused_with_clear_errors() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.submit_task: the task Callable is invalid")
	assert_eq(processor.submit_task(Callable()), -1)
	expect_error("AsyncTaskProcessor.submit_task: priority 7")
	assert_eq(processor.submit_task(func() -> void: pass, Callable(), 7), -1)
	expect_error("AsyncTaskProcessor.start_workers: -1 threads")
	assert_false(processor.start_workers(-1))
	expect_error("AsyncTaskProcessor.start_workers: 1000 threads")
	assert_false(processor.start_workers(1000))
	assert_eq(processor.get_task_status(123456), AsyncTaskProcessor.STATUS_UNKNOWN)
	assert_false(processor.cancel_task(-5))
	processor.stop_workers()
	expect_error("AsyncTaskProcessor.submit_task: the workers are not running")
	assert_eq(processor.submit_task(func() -> void: pass), -1)
	processor.queue_free()


func test_stop_cancels_pending_and_start_again_works() -> void:
	var processor := new_processor(1)
	var cancelled := []
	processor.task_cancelled.connect(func(id: int) -> void: cancelled.append(id))
	var gate := Semaphore.new()
	processor.submit_task(func() -> void: gate.wait())
	for i in 5:
		processor.submit_task(func() -> void: pass)
	# Stop while the only worker is held: the 5 queued tasks are cancelled by the stop itself,
	# and the held one was asked to cancel, so it ends cancelled once released.
	processor.stop_workers(false)
	gate.post()
	assert_false(processor.is_running())
	assert_true(await frames_until(func() -> bool: return cancelled.size() == 6))
	assert_eq(processor.get_stats().pending, 0)
	for cycle in 5:
		assert_true(processor.start_workers(2))
		var results := []
		processor.submit_task(func() -> int: return cycle, func(r: int) -> void: results.append(r))
		assert_true(await frames_until(func() -> bool: return results == [cycle]))
		processor.stop_workers()
	processor.queue_free()


var _chain := []
var _chain_stats := []


func test_reentrant_callbacks_submit_and_read_stats() -> void:
	_processor = new_processor()
	_chain.clear()
	_chain_stats.clear()
	_processor.submit_task(func() -> int: return 1, _chain_step)
	assert_true(await frames_until(func() -> bool: return _chain.size() == 5))
	assert_eq(_chain, [1, 2, 3, 4, 5])
	assert_eq(_chain_stats, [1, 2, 3, 4, 5])
	_processor.queue_free()


## A callback that calls back into the processor that is delivering it.
func _chain_step(result: int) -> void:
	_chain.append(result)
	_chain_stats.append(_processor.get_stats().submitted)
	if result < 5:
		_processor.submit_task(func() -> int: return result + 1, _chain_step)


func test_submit_from_worker_threads_is_exact() -> void:
	var processor := new_processor(2)
	var counter := AtomicCounter.new()
	var threads := run_threads(4, func(_i: int) -> int:
		var ok := 0
		for n in 250:
			if processor.submit_task(func() -> void: counter.increment()) > 0:
				ok += 1
		return ok)
	assert_eq(threads, [250, 250, 250, 250])
	assert_true(await frames_until(func() -> bool: return processor.get_stats().completed == 1000))
	assert_eq(counter.get_count(), 1000)
	processor.queue_free()


var _finished_handles := 0


func _count_finished_handle(_result: Variant) -> void:
	_finished_handles += 1


func test_freeing_the_processor_with_1000_tasks_in_flight_100_times() -> void:
	const ROUNDS := 100
	const TASKS := 1000
	const WORKERS := 2
	var ran := AtomicCounter.new()  # Tasks with a handle whose body ran.
	var ran_with_callback := AtomicCounter.new()  # Tasks with a callback whose body ran.
	var callbacks := AtomicCounter.new()
	for i in 3:
		await get_tree().process_frame
	var objects_before := Performance.get_monitor(Performance.OBJECT_COUNT)
	_finished_handles = 0
	var handles: Array[TaskHandle] = []
	for round in ROUNDS:
		var processor := new_processor(WORKERS)
		for i in TASKS:
			if i % 2 == 0:
				handles.append(processor.run(func() -> int: return ran.increment()))
				handles[-1].finished.connect(_count_finished_handle)
			else:
				processor.submit_task(func() -> void: ran_with_callback.increment(), func() -> void: callbacks.increment())
		processor.free()
	# free() waited for the running tasks; the handles are released by the next drains.
	assert_true(await frames_until(func() -> bool: return _finished_handles >= ROUNDS * TASKS / 2))
	assert_eq(_finished_handles, ROUNDS * TASKS / 2, "free() released every awaiter, once")
	var statuses := handles.map(func(handle: TaskHandle) -> int: return handle.get_status())
	var completed := statuses.count(AsyncTaskProcessor.STATUS_COMPLETED)
	assert_eq(completed + statuses.count(AsyncTaskProcessor.STATUS_CANCELLED), handles.size(),
			"every task ended, completed or cancelled, by the time free() returned")
	# Every task that ran completed, but those running at the free (at most WORKERS a round),
	# which were asked to cancel and so ended cancelled; none ran twice. Callbacks never run
	# once their processor is freed, so those not delivered by then never run.
	var ran_but_cancelled := ran.get_count() - completed
	assert_true(ran_but_cancelled >= 0 and ran_but_cancelled <= WORKERS * ROUNDS,
			"%d ran, %d completed" % [ran.get_count(), completed])
	assert_true(callbacks.get_count() <= ran_with_callback.get_count(),
			"%d ran, %d called back" % [ran_with_callback.get_count(), callbacks.get_count()])
	var called_back := callbacks.get_count()
	handles.clear()
	for i in 3:  # Freed nodes go at the end of a frame.
		await get_tree().process_frame
	assert_eq(Performance.get_monitor(Performance.OBJECT_COUNT), objects_before, "no object left behind")
	assert_eq(callbacks.get_count(), called_back, "no callback ran after its processor was freed")


func test_results_are_deep_copies() -> void:
	var processor := new_processor(1)
	var shared := {"list": [1, 2]}
	var got := []
	processor.submit_task(func() -> Dictionary: return shared, func(r: Dictionary) -> void: got.append(r))
	assert_true(await frames_until(func() -> bool: return got.size() == 1))
	assert_eq(got[0], {"list": [1, 2]})
	got[0].list.append(3)
	assert_eq(shared.list, [1, 2], "the task's dictionary is not shared with the callback")
	processor.queue_free()
