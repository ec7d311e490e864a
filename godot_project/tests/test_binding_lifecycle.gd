extends "res://tests/support/processor_test_case.gd"
## Objects freed while threads wait on them or while they run user code, and properties set
## from callbacks, coroutines, threads and tasks: Godot never aborts, a waiter wakes with one
## error, and every new value takes effect.


## Waits (without letting a frame pass) until [param count] threads are blocked in one of
## [param processor]'s waits; false if that never happened.
func _until_waiting(processor: AsyncTaskProcessor, count: int) -> bool:
	for i in 20000:
		if processor.get_stats().get("waiting", 0) == count:
			return true
		OS.delay_usec(100)
	return false


## Waits (without letting a frame pass, so nothing is delivered) until [param done] holds.
func _spin_until(done: Callable) -> void:
	while not done.call():
		OS.delay_usec(100)


## How many callbacks ran in each frame, in frame order, for the frames that ran any.
func _per_frame(frames: Array) -> Array:
	var counts := {}
	for frame: int in frames:
		counts[frame] = counts.get(frame, 0) + 1
	var keys := counts.keys()
	keys.sort()
	return keys.map(func(frame: int) -> int: return counts[frame])


## Submits [param count] tasks whose callbacks record their frame into [param frames], and
## waits until all completed without letting a frame pass, so that delivery alone spreads them.
func _completed_callbacks(processor: AsyncTaskProcessor, count: int, frames: Array) -> void:
	var ids := []
	for i in count:
		ids.append(processor.submit_task(func() -> int: return i, func(_r: int) -> void:
			OS.delay_usec(50)  # Longer than a 1 µs frame budget.
			frames.append(Engine.get_process_frames())))
	_spin_until(func() -> bool:
		return ids.all(func(id: int) -> bool:
			return processor.get_task_status(id) == AsyncTaskProcessor.STATUS_COMPLETED))


## Sets every exported property of [param processor] to the values in [param values]
## (worker_count, autostart, max_callbacks_per_frame, frame_budget_usec, stop_timeout_msec).
func _set_all(processor: AsyncTaskProcessor, values: Array) -> void:
	processor.worker_count = values[0]
	processor.autostart = values[1]
	processor.max_callbacks_per_frame = values[2]
	processor.frame_budget_usec = values[3]
	processor.stop_timeout_msec = values[4]


func _get_all(processor: AsyncTaskProcessor) -> Array:
	return [processor.worker_count, processor.autostart, processor.max_callbacks_per_frame,
			processor.frame_budget_usec, processor.stop_timeout_msec]


## worker_count: a restart without a count starts that many workers.
func _assert_worker_count_applies(processor: AsyncTaskProcessor, expected: int) -> void:
	processor.stop_workers()
	assert_true(processor.start_workers())
	assert_eq(processor.get_stats().workers, expected, "start_workers() uses worker_count")


## autostart: the processor entering the tree afresh starts its workers only when it is on.
func _assert_autostart_applies(processor: AsyncTaskProcessor, expected: bool) -> void:
	var parent := processor.get_parent()
	parent.remove_child(processor)
	processor.stop_workers()
	processor.request_ready()
	parent.add_child(processor)
	assert_eq(processor.is_running(), expected, "_ready() follows autostart")
	if not processor.is_running():
		processor.start_workers()


func test_freeing_the_processor_wakes_a_thread_waiting_for_a_task_that_outlives_the_stop() -> void:
	var processor := new_processor(1)
	processor.stop_timeout_msec = 20
	var started := Semaphore.new()
	var release := Semaphore.new()
	var ended := Semaphore.new()
	var id := processor.submit_task(func() -> int:
		started.post()
		release.wait()  # Ignores is_cancelled(): outlives the stop's 20 ms.
		ended.post()
		return 1)
	started.wait()
	var thread := Thread.new()
	thread.start(func() -> Variant:
		var result: Variant = processor.wait_for_task(id)
		release.post()  # Woken by the free, which still waits for the task: let it return.
		return result)
	assert_true(_until_waiting(processor, 1), "the thread is blocked in wait_for_task")
	expect_error("AsyncTaskProcessor.wait_for_task: the processor was freed while waiting")
	processor.free()  # Wakes the waiter first, then waits for the task (its script must outlive it).
	assert_eq(thread.wait_to_finish(), null, "the waiter woke with null")
	assert_true(ended.try_wait(), "free() returned only once the task had returned")


func test_a_thread_waiting_in_wait_all_wakes_when_the_processor_is_freed() -> void:
	var processor := new_processor(1)
	processor.stop_timeout_msec = 20
	var started := Semaphore.new()
	var release := Semaphore.new()
	var ended := Semaphore.new()
	processor.submit_task(func() -> void:
		started.post()
		release.wait()
		ended.post())
	started.wait()
	var thread := Thread.new()
	thread.start(func() -> bool:
		var all_ended := processor.wait_all()
		release.post()  # Woken by the free, which still waits for the task: let it return.
		return all_ended)
	assert_true(_until_waiting(processor, 1), "the thread is blocked in wait_all")
	expect_error("AsyncTaskProcessor.wait_all: the processor was freed while waiting")
	processor.free()
	assert_eq(thread.wait_to_finish(), false, "the waiter woke with false")
	assert_true(ended.try_wait(), "free() returned only once the task had returned")


func test_a_dispatched_job_frees_the_level_while_the_main_thread_waits_in_wait_all() -> void:
	var level := Node.new()
	add_child(level)
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 1
	level.add_child(processor)
	var handle := processor.run(func() -> int:
		MainThreadDispatcher.dispatch(func() -> void: level.free())
		return 7)
	expect_error("AsyncTaskProcessor.wait_all: the processor was freed while waiting")
	assert_false(processor.wait_all(), "wait_all() returns false once its processor is gone")
	assert_false(is_instance_valid(level))
	assert_eq(handle.get_result(), 7)


func test_a_dispatched_job_frees_the_processor_while_the_main_thread_waits_for_a_task() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var queued := processor.submit_task(func() -> int: return 1)
	MainThreadDispatcher.dispatch(func() -> void: processor.free())
	expect_error("AsyncTaskProcessor.wait_for_task: the processor was freed while waiting")
	assert_eq(processor.wait_for_task(queued), null)
	gate.post()


func test_freeing_a_processor_outside_the_tree_releases_its_handles_once_it_is_gone() -> void:
	var processor := AsyncTaskProcessor.new()
	assert_true(processor.start_workers(1))
	var id := processor.get_instance_id()
	var gate := hold_worker(processor)
	var handle := processor.run(func() -> int: return 1)
	var seen := []
	handle.finished.connect(func(result: Variant) -> void: seen.append([result, is_instance_id_valid(id)]))
	processor.free()  # Never in the tree: its Drop, not leaving the tree, ends the queued task.
	gate.post()
	assert_eq(seen, [], "nothing resumes inside free(), where the processor is half destroyed")
	assert_true(await frames_until(func() -> bool: return seen.size() == 1))
	assert_eq(seen, [[null, false]], "released once, after the processor was gone")
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_a_callback_frees_its_processor() -> void:
	var processor := new_processor(1)
	var calls := []
	var finished := []
	var gate := hold_worker(processor)
	var first := processor.submit_task(func() -> int: return 1, func(r: int) -> void:
		calls.append(r)
		processor.free())
	var handle := processor.run(func() -> int: return 2)
	handle.finished.connect(func(result: Variant) -> void: finished.append(result))
	var last := processor.submit_task(func() -> int: return 3, func(r: int) -> void: calls.append(r))
	gate.post()
	_spin_until(func() -> bool:
		return handle.is_done() and processor.get_task_status(last) == AsyncTaskProcessor.STATUS_COMPLETED)
	assert_true(first > 0)
	assert_true(await frames_until(func() -> bool: return finished.size() == 1))
	assert_false(is_instance_valid(processor))
	# Callbacks never run once their processor is freed; handles still finish, with their result.
	assert_eq(calls, [1])
	assert_eq(finished, [2])


func test_freeing_the_processor_right_after_awaiting_its_handle() -> void:
	var processor := new_processor(1)
	var other := processor.run(func() -> int: return 2)
	_spin_until(other.is_done)
	var result = await processor.run(func() -> int: return 1).finished
	# Resumed inside the processor's delivery.
	processor.free()
	assert_eq(result, 1)
	assert_false(is_instance_valid(processor))
	assert_true(await frames_until(func() -> bool: return other.is_done()))
	assert_eq(other.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)


func test_a_callback_calls_back_into_its_processor() -> void:
	var processor := new_processor(1)
	var seen := []
	processor.submit_task(func() -> int: return 1, func(_r: int) -> void:
		_set_all(processor, [3, false, 1, 0, 1000])
		seen.append(processor.get_stats().completed)
		seen.append(processor.submit_task(func() -> int: return 2, func(r: int) -> void: seen.append(r)) > 0))
	assert_true(await frames_until(func() -> bool: return seen.size() == 3))
	assert_eq(seen, [1, true, 2])
	assert_eq(_get_all(processor), [3, false, 1, 0, 1000])
	processor.queue_free()


func test_max_callbacks_per_frame_set_in_a_callback_limits_the_next_frames() -> void:
	var processor := new_processor(1)
	var set_in := []
	processor.submit_task(func() -> void: pass, func() -> void:
		processor.max_callbacks_per_frame = 1
		set_in.append(Engine.get_process_frames()))
	assert_true(await frames_until(func() -> bool: return set_in.size() == 1))
	var frames := []
	_completed_callbacks(processor, 4, frames)
	assert_true(await frames_until(func() -> bool: return frames.size() == 4))
	assert_eq(_per_frame(frames), [1, 1, 1, 1], "one callback per frame")
	processor.queue_free()


func test_properties_set_in_a_callback_take_effect() -> void:
	var processor := new_processor(1)
	var done := []
	processor.submit_task(func() -> void: pass, func() -> void:
		_set_all(processor, [3, false, 0, 1, 1000])
		done.append(true))
	assert_true(await frames_until(func() -> bool: return done.size() == 1))
	assert_eq(_get_all(processor), [3, false, 0, 1, 1000])
	var frames := []
	_completed_callbacks(processor, 3, frames)
	assert_true(await frames_until(func() -> bool: return frames.size() == 3))
	assert_eq(_per_frame(frames), [1, 1, 1], "a 1 µs budget delivers one callback per frame")
	_assert_worker_count_applies(processor, 3)
	_assert_autostart_applies(processor, false)
	processor.queue_free()


func test_properties_set_after_an_await_take_effect() -> void:
	var processor := new_processor(1)
	await processor.run(func() -> void: pass).finished
	# Resumed inside the processor's delivery.
	_set_all(processor, [2, false, 1, 0, 1000])
	assert_eq(_get_all(processor), [2, false, 1, 0, 1000])
	await _assert_settings_take_effect(processor, 2)
	processor.queue_free()


func test_a_thread_sets_properties_while_other_threads_read_them() -> void:
	const ROUNDS := 2000
	var processor := new_processor(1)
	_set_all(processor, [0, true, 0, 0, 0])
	var writing := AtomicCounter.new()
	var readers: Array[Thread] = []
	for r in 2:
		var reader := Thread.new()
		reader.start(func() -> int:
			var backwards := 0
			var last := 0
			while writing.get_count() == 0:
				var now := processor.max_callbacks_per_frame
				if now < last:
					backwards += 1
				last = now
				var _others := [processor.worker_count, processor.autostart, processor.stop_timeout_msec]
			return backwards)
		readers.append(reader)
	var writer := Thread.new()
	writer.start(func() -> void:
		for i in ROUNDS:
			processor.max_callbacks_per_frame = processor.max_callbacks_per_frame + 1
			processor.frame_budget_usec = processor.frame_budget_usec + 1
			processor.stop_timeout_msec = processor.stop_timeout_msec + 1
			processor.worker_count = processor.worker_count + 1
			processor.autostart = not processor.autostart
		writing.increment())
	writer.wait_to_finish()
	for reader in readers:
		assert_eq(reader.wait_to_finish(), 0, "a reader never saw a value go back")
	assert_eq(_get_all(processor), [ROUNDS, true, ROUNDS, ROUNDS, ROUNDS], "no write was lost")
	writer = Thread.new()
	writer.start(func() -> void: _set_all(processor, [2, false, 1, 0, 1000]))
	writer.wait_to_finish()
	await _assert_settings_take_effect(processor, 2)
	processor.queue_free()


func test_a_task_sets_properties_while_the_main_thread_waits_in_wait_all() -> void:
	var processor := new_processor(1)
	processor.submit_task(func() -> void: _set_all(processor, [3, false, 1, 0, 1000]))
	assert_true(processor.wait_all(), "wait_all() returns once the task set them")
	assert_eq(_get_all(processor), [3, false, 1, 0, 1000])
	await _assert_settings_take_effect(processor, 3)
	processor.queue_free()


func test_stop_timeout_msec_set_from_a_task_while_the_main_thread_waits_bounds_the_next_stop() -> void:
	var processor := new_processor(1)
	var setter := processor.submit_task(func() -> void: processor.stop_timeout_msec = 0)
	processor.wait_for_task(setter)
	assert_eq(processor.stop_timeout_msec, 0)
	var release := Semaphore.new()
	var started := Semaphore.new()
	var ended := Semaphore.new()
	var id := processor.submit_task(func() -> void:
		started.post()
		release.wait()  # Ignores is_cancelled().
		ended.post())
	started.wait()
	processor.stop_workers(true)  # Warns that the task still runs, and returns at once.
	assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_RUNNING,
			"the stop did not wait for the task")
	release.post()
	ended.wait()
	processor.queue_free()


func test_a_dispatched_job_frees_the_dispatcher_node_that_runs_it() -> void:
	var dispatcher := MainThreadDispatcher.new()
	add_child(dispatcher)
	var ran := []
	MainThreadDispatcher.dispatch(func() -> void:
		ran.append("first")
		dispatcher.free())
	MainThreadDispatcher.dispatch(func() -> void: ran.append("second"))
	assert_true(await frames_until(func() -> bool: return ran.size() == 2))
	assert_eq(ran, ["first", "second"], "the built-in node drains once the user's one is gone")
	assert_false(is_instance_valid(dispatcher))


## The settings tests apply (one callback per frame, [param workers] workers on restart,
## autostart off) are in force.
func _assert_settings_take_effect(processor: AsyncTaskProcessor, workers: int) -> void:
	var frames := []
	_completed_callbacks(processor, 3, frames)
	assert_true(await frames_until(func() -> bool: return frames.size() == 3))
	assert_eq(_per_frame(frames), [1, 1, 1])
	_assert_worker_count_applies(processor, workers)
	_assert_autostart_applies(processor, false)
