extends "res://tests/support/processor_test_case.gd"
## await processor.switch_to_worker() moves the rest of a coroutine to a worker (as a task of the
## processor), await MainThreadDispatcher.switch_to_main_thread() brings it back; every hop lands
## on the right thread, a switch that cannot happen resumes on the main thread with an error (so
## an await never hangs), and tasks still may not await.

const NULL_CALL := "Nonexistent function 'explode' in base 'Nil'"


## The coroutines of these tests. Not a Node: a worker may not connect to a Node's signal.
class Hopper extends RefCounted:
	var on_worker := AtomicCounter.new()
	var on_main := AtomicCounter.new()
	var wrong := AtomicCounter.new()
	var cancelled_seen := AtomicCounter.new()
	var started := AtomicCounter.new()
	var done := AtomicCounter.new()

	static func on_main_thread() -> bool:
		return OS.get_thread_caller_id() == OS.get_main_thread_id()

	func count(expect_main: bool) -> void:
		if on_main_thread() == expect_main:
			(on_main if expect_main else on_worker).increment()
		else:
			wrong.increment()

	## main -> worker -> main, [param times] times; returns [param times].
	func hop(processor: AsyncTaskProcessor, times: int) -> int:
		for i in times:
			await processor.switch_to_worker()
			count(false)
			await MainThreadDispatcher.switch_to_main_thread()
			count(true)
		return times

	## On a worker until the task is cancelled (by freeing the processor), then back to main.
	func run_until_cancelled(processor: AsyncTaskProcessor) -> void:
		await processor.switch_to_worker()
		count(false)
		started.increment()
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200)
		cancelled_seen.increment()
		await MainThreadDispatcher.switch_to_main_thread()
		count(true)
		done.increment()

	## To a worker of [param running], then to [param stopped], whose workers are not running.
	func switch_to_stopped(running: AsyncTaskProcessor, stopped: AsyncTaskProcessor) -> void:
		await running.switch_to_worker()
		count(false)
		await stopped.switch_to_worker()
		count(true)
		done.increment()

	## Started on a Thread of the test's own: to the main thread, then to a worker.
	func from_thread(processor: AsyncTaskProcessor) -> void:
		count(false)
		await MainThreadDispatcher.switch_to_main_thread()
		count(true)
		await processor.switch_to_worker()
		count(false)
		await MainThreadDispatcher.switch_to_main_thread()
		count(true)
		done.increment()

	func explode_on_worker(processor: AsyncTaskProcessor) -> void:
		await processor.switch_to_worker()
		count(false)
		var nothing: Variant = null
		nothing.explode()
		done.increment()

	func report_on_worker(processor: AsyncTaskProcessor) -> bool:
		await processor.switch_to_worker()
		AsyncTaskProcessor.report_progress(0.5)
		var cancelled := AsyncTaskProcessor.is_cancelled()
		await MainThreadDispatcher.switch_to_main_thread()
		return cancelled


func test_a_coroutine_hops_main_worker_main_100_times_on_the_right_threads() -> void:
	var processor := new_processor(2)
	var hopper := Hopper.new()
	var result = await hopper.hop(processor, 100)
	assert_eq(result, 100)
	assert_true(Hopper.on_main_thread(), "the awaiting test resumes on the main thread")
	assert_eq(hopper.on_worker.get_count(), 100, "every switch_to_worker landed on a worker")
	assert_eq(hopper.on_main.get_count(), 100, "every switch_to_main_thread landed on main")
	assert_eq(hopper.wrong.get_count(), 0, "no hop landed on the wrong thread")
	assert_true(await frames_until(func() -> bool: return processor.get_stats().completed == 100))
	var stats := processor.get_stats()
	assert_eq(stats.submitted, 100, "each stay on a worker is one task")
	assert_eq(stats.completed, 100)
	assert_eq(stats.failed, 0)


func test_is_cancelled_and_report_progress_work_in_a_switched_coroutine() -> void:
	var processor := new_processor(1)
	var hopper := Hopper.new()
	var cancelled = await hopper.report_on_worker(processor)
	assert_eq(cancelled, false)
	assert_true(Hopper.on_main_thread())


func test_a_switch_inside_a_task_is_refused_and_the_task_goes_on() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> bool:
		await MainThreadDispatcher.switch_to_main_thread()
		return Hopper.on_main_thread())
	expect_error("MainThreadDispatcher.switch_to_main_thread: called inside a task")
	assert_eq(await handle.finished, false, "the task went on on its worker")
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	var other := new_processor(1)
	var nested := processor.run(func() -> bool:
		await other.switch_to_worker()
		return Hopper.on_main_thread())
	expect_error("AsyncTaskProcessor.switch_to_worker: called inside a task")
	assert_eq(await nested.finished, false)
	assert_eq(other.get_stats().submitted, 0, "no task was queued on the other processor")


func test_freeing_the_processor_while_a_switched_coroutine_runs_waits_and_resumes_on_main() -> void:
	var processor := new_processor(1)
	var hopper := Hopper.new()
	hopper.run_until_cancelled(processor)  # Not awaited: it goes on by itself.
	assert_true(await frames_until(func() -> bool: return hopper.started.get_count() == 1))
	processor.free()  # Cancels the running task and waits for it to return.
	assert_eq(hopper.cancelled_seen.get_count(), 1, "freeing waited for the switched coroutine")
	assert_true(await frames_until(func() -> bool: return hopper.done.get_count() == 1))
	assert_eq(hopper.on_worker.get_count(), 1)
	assert_eq(hopper.on_main.get_count(), 1, "it resumed on the main thread after the free")
	assert_eq(hopper.wrong.get_count(), 0)


func test_switch_to_main_thread_works_while_the_tree_is_paused() -> void:
	var processor := new_processor(2)
	var hopper := Hopper.new()
	get_tree().paused = true
	var result = await hopper.hop(processor, 5)
	var paused := get_tree().paused
	get_tree().paused = false
	assert_true(paused, "the hops ran during the pause")
	assert_eq(result, 5)
	assert_eq(hopper.on_worker.get_count(), 5)
	assert_eq(hopper.on_main.get_count(), 5)
	assert_eq(hopper.wrong.get_count(), 0)


func test_a_switch_to_stopped_workers_reports_and_stays_on_the_main_thread() -> void:
	var processor := new_processor(1)
	processor.stop_workers()
	expect_error("AsyncTaskProcessor.switch_to_worker: the workers are not running")
	await processor.switch_to_worker()
	assert_true(Hopper.on_main_thread(), "goes on at once on the main thread")
	assert_eq(processor.get_stats().submitted, 0)


func test_a_switch_from_a_worker_to_stopped_workers_resumes_on_the_main_thread() -> void:
	var running := new_processor(1)
	var stopped := new_processor(1)
	stopped.stop_workers()
	var hopper := Hopper.new()
	expect_error("AsyncTaskProcessor.switch_to_worker: the workers are not running")
	await hopper.switch_to_stopped(running, stopped)
	assert_eq(hopper.done.get_count(), 1)
	assert_eq(hopper.on_worker.get_count(), 1)
	assert_eq(hopper.on_main.get_count(), 1, "it resumed on the main thread, not hanging")
	assert_eq(hopper.wrong.get_count(), 0)


func test_a_switch_cancelled_before_a_worker_ran_it_resumes_on_the_main_thread() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var hopper := Hopper.new()
	hopper.hop(processor, 1)  # Queued behind the held worker at the next frame.
	assert_true(await frames_until(func() -> bool: return processor.get_stats().pending == 1))
	expect_error("no worker ran the switch")
	processor.stop_workers()  # Cancels the queued switch (and asks the held task to stop).
	gate.post()
	assert_true(await frames_until(func() -> bool: return hopper.on_main.get_count() == 1))
	assert_eq(hopper.on_worker.get_count(), 0)
	assert_eq(hopper.wrong.get_count(), 1, "the would-be worker part ran on the main thread")


func test_cancel_all_before_a_worker_ran_a_switch_resumes_it_on_the_main_thread_saying_why() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var hopper := Hopper.new()
	hopper.hop(processor, 1)  # Queued behind the held worker at the next frame.
	assert_true(await frames_until(func() -> bool: return processor.get_stats().pending == 1))
	expect_error("no worker ran the switch (it was cancelled, by cancel_all()")
	assert_eq(processor.cancel_all(), 2, "the switch and the held task")
	gate.post()
	assert_true(await frames_until(func() -> bool: return hopper.on_main.get_count() == 1))
	assert_eq(hopper.on_worker.get_count(), 0)
	assert_true(processor.is_running(), "the workers keep running")
	processor.queue_free()


func test_a_script_error_in_a_switched_coroutine_fails_its_task() -> void:
	var processor := new_processor(1)
	var failures := []
	processor.task_failed.connect(func(id: int, message: String) -> void: failures.append(message))
	var hopper := Hopper.new()
	hopper.explode_on_worker(processor)
	expect_error(NULL_CALL)
	expect_error("failed: SCRIPT ERROR")
	assert_true(await frames_until(func() -> bool: return failures.size() == 1))
	assert_true(NULL_CALL in failures[0], failures[0])
	assert_eq(hopper.on_worker.get_count(), 1)
	assert_eq(hopper.done.get_count(), 0, "the coroutine stopped at the error")
	assert_eq(processor.get_stats().failed, 1)


func test_a_switch_nobody_awaits_is_reported() -> void:
	var processor := new_processor(1)
	var never_awaited = processor.switch_to_worker()
	assert_eq(typeof(never_awaited), TYPE_SIGNAL)
	expect_error("AsyncTaskProcessor.switch_to_worker: the Signal it returned was not awaited")
	for i in 3:
		await get_tree().process_frame
	assert_eq(processor.get_stats().submitted, 0)


func test_a_coroutine_started_on_a_thread_of_your_own_switches_too() -> void:
	var processor := new_processor(1)
	var hopper := Hopper.new()
	var thread := Thread.new()
	thread.start(hopper.from_thread.bind(processor))
	thread.wait_to_finish()  # The thread's function returned at its first await.
	assert_true(await frames_until(func() -> bool: return hopper.done.get_count() == 1))
	assert_eq(hopper.on_worker.get_count(), 2, "the thread, then a worker")
	assert_eq(hopper.on_main.get_count(), 2)
	assert_eq(hopper.wrong.get_count(), 0)


func test_freeing_the_processor_before_its_switch_ran_resumes_on_the_main_thread() -> void:
	var processor := new_processor(1)
	var hopper := Hopper.new()
	hopper.hop(processor, 1)  # Launched at the next frame, after the free.
	processor.free()
	expect_error("no worker ran the switch")
	assert_true(await frames_until(func() -> bool: return hopper.on_main.get_count() == 1))
	assert_eq(hopper.on_worker.get_count(), 0)
	assert_eq(hopper.wrong.get_count(), 1, "the would-be worker part ran on the main thread")


func test_a_switch_a_thread_of_your_own_never_awaits_is_reported_after_two_seconds() -> void:
	var thread := Thread.new()
	thread.start(func() -> void:
		var never_awaited = MainThreadDispatcher.switch_to_main_thread())
	thread.wait_to_finish()
	expect_error("MainThreadDispatcher.switch_to_main_thread: the Signal it returned was not awaited")
	# The main thread gives another thread 2 s to reach its await, then reports at its next frame.
	var started := Time.get_ticks_msec()
	while Time.get_ticks_msec() - started < 2100:
		await get_tree().process_frame
	for i in 3:
		await get_tree().process_frame
