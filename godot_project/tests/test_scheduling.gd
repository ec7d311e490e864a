extends "res://tests/support/processor_test_case.gd"
## Scheduling in AsyncTaskProcessor: three priorities, groups limited to some workers, delayed
## tasks and yield_now(). Nothing passes or fails on timing: delays are checked through the
## order of events, and every wait has a frame cap only so that a bug fails instead of hanging.

const LEVELS := [AsyncTaskProcessor.PRIORITY_LOW, AsyncTaskProcessor.PRIORITY_NORMAL,
		AsyncTaskProcessor.PRIORITY_HIGH]


func test_thirty_tasks_run_most_urgent_first_and_in_order_within_a_priority() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var order := []
	var expected := [[], [], []]  # Per level, low to high: the tags in submission order.
	for tag in 30:
		var level: int = [0, 2, 1, 1, 0, 2, 2, 1, 0][tag % 9]
		var priority: int = LEVELS[level]
		expected[level].append(tag)
		# Every method that takes a priority, in turn.
		match tag % 3:
			0:
				processor.submit_task(func() -> int: return tag,
						func(t: int) -> void: order.append(t), priority)
			1:
				processor.run(func() -> int: return tag, priority).finished.connect(
						func(t: int) -> void: order.append(t))
			2:
				processor.submit_group(func(_i: int) -> int: return tag, 1,
						func(r: Array) -> void: order.append(r[0]), priority)
	gate.post()
	assert_true(await frames_until(func() -> bool: return order.size() == 30))
	assert_eq(order, expected[2] + expected[1] + expected[0])
	assert_eq(expected.map(func(tags: Array) -> int: return tags.size()), [10, 10, 10])
	processor.queue_free()


func test_a_bad_priority_is_refused_naming_the_three() -> void:
	var processor := new_processor(1)
	var message := "priority 2 is not PRIORITY_LOW (-1), PRIORITY_NORMAL (0) or PRIORITY_HIGH (1)"
	expect_error("AsyncTaskProcessor.submit_task: " + message)
	assert_eq(processor.submit_task(func() -> void: pass, Callable(), 2), -1)
	expect_error("AsyncTaskProcessor.run: priority -2 is not PRIORITY_LOW (-1)")
	assert_eq(await processor.run(func() -> void: pass, -2).finished, null)
	expect_error("AsyncTaskProcessor.run_delayed: " + message)
	assert_eq(processor.run_delayed(func() -> void: pass, 10, 2).id, -1)
	assert_eq(processor.get_stats().submitted, 0)
	processor.queue_free()


## Raises [param peak] to [param value] if it is higher.
func _raise(peak: AtomicCounter, value: int) -> void:
	while true:
		var seen := peak.get_count()
		if value <= seen or peak.compare_and_set(seen, value):
			return


func test_a_group_with_max_threads_uses_at_most_that_many_workers_at_once() -> void:
	var processor := new_processor(4)
	var inside := AtomicCounter.new()
	var peak := AtomicCounter.new()
	var gate := Semaphore.new()
	var group := processor.submit_group(func(i: int) -> int:
		_raise(peak, inside.increment())
		gate.wait()
		inside.decrement()
		return i, 8, Callable(), AsyncTaskProcessor.PRIORITY_NORMAL, 2)
	# Two calls are held at the gate: the group has its two workers...
	assert_true(await frames_until(func() -> bool: return inside.get_count() == 2))
	# ...and the other two run other tasks meanwhile.
	var others := []
	for i in 6:
		others.append(processor.run(func() -> int: return 100 + i))
	assert_true(await frames_until(func() -> bool:
		return others.all(func(h: TaskHandle) -> bool: return h.is_done())))
	assert_eq(others.map(func(h: TaskHandle) -> Variant: return h.get_result()),
			[100, 101, 102, 103, 104, 105])
	assert_eq(inside.get_count(), 2, "no third call started")
	assert_eq(group.get_status(), AsyncTaskProcessor.STATUS_RUNNING)
	for i in 8:
		gate.post()
	assert_eq(await group.finished, [0, 1, 2, 3, 4, 5, 6, 7])
	assert_eq(peak.get_count(), 2, "exactly two at once, never more")
	processor.queue_free()


func test_max_threads_zero_or_past_the_worker_count_means_every_worker() -> void:
	var processor := new_processor(3)
	for max_threads in [0, 3, 50]:
		var inside := AtomicCounter.new()
		var peak := AtomicCounter.new()
		var gate := Semaphore.new()
		var group := processor.submit_group(func(i: int) -> int:
			_raise(peak, inside.increment())
			gate.wait()
			inside.decrement()
			return i, 6, Callable(), AsyncTaskProcessor.PRIORITY_HIGH, max_threads)
		assert_true(await frames_until(func() -> bool: return inside.get_count() == 3))
		for i in 6:
			gate.post()
		assert_eq(await group.finished, [0, 1, 2, 3, 4, 5])
		assert_eq(peak.get_count(), 3, "max_threads %d: every worker" % max_threads)
	processor.queue_free()


func test_a_negative_max_threads_is_refused() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.submit_group: max_threads -1 is negative")
	var refused := processor.submit_group(func(_i: int) -> void: pass, 4, Callable(),
			AsyncTaskProcessor.PRIORITY_NORMAL, -1)
	assert_eq(refused.id, -1)
	assert_eq(await refused.finished, null)
	processor.queue_free()


func test_delayed_tasks_finish_in_delay_order() -> void:
	var processor := new_processor(1)
	var order := []
	# Submitted longest first, 200 ms apart: however slow this thread, the deadlines keep
	# their order.
	for delay in [440, 240, 40]:
		processor.run_delayed(func() -> int: return delay, delay).finished.connect(
				func(d: int) -> void: order.append(d))
	assert_true(await frames_until(func() -> bool: return order.size() == 3, 3000))
	assert_eq(order, [40, 240, 440])
	assert_eq(processor.get_stats().completed, 3)
	processor.queue_free()


func test_a_delayed_task_is_pending_holds_no_worker_and_can_be_cancelled() -> void:
	var processor := new_processor(1)
	var runs := AtomicCounter.new()
	var hour := 3_600_000
	var handles := []
	for priority in LEVELS:
		handles.append(processor.run_delayed(func() -> void: runs.increment(), hour, priority))
	var stats := processor.get_stats()
	assert_eq([stats.pending, stats.delayed, stats.running, stats.busy_workers], [3, 3, 0, 0])
	for handle: TaskHandle in handles:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_PENDING)
		assert_eq(processor.get_task_status(handle.id), AsyncTaskProcessor.STATUS_PENDING)
	# The only worker is free: a task submitted now runs now.
	assert_eq(await processor.run(func() -> int: return 7).finished, 7)
	assert_true(handles[0].cancel())
	assert_true(processor.cancel_task(handles[1].id))
	assert_eq(await handles[0].finished, null)
	assert_eq(handles[0].get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	stats = processor.get_stats()
	assert_eq([stats.pending, stats.delayed, stats.cancelled], [1, 1, 2])
	# Stopping cancels the last one; its handle finishes.
	processor.stop_workers()
	assert_eq(await handles[2].finished, null)
	assert_eq(handles[2].get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	stats = processor.get_stats()
	assert_eq([stats.pending, stats.delayed, stats.cancelled], [0, 0, 3])
	assert_eq(runs.get_count(), 0)
	processor.queue_free()


func test_waiting_for_a_delayed_task_does_not_run_it_early() -> void:
	var processor := new_processor(1)
	var delayed := processor.run_delayed(func() -> int: return 5, 3_600_000)
	# From a task on the only worker: the wait times out; the task was not run inline.
	var waited := processor.run(func() -> Variant:
		return processor.wait_for_task(delayed.id, 100))
	assert_eq(await waited.finished, null)
	assert_eq(delayed.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	assert_eq(processor.get_stats().spare_workers, 0)
	processor.queue_free()


func test_a_zero_delay_runs_now_and_a_negative_one_is_refused() -> void:
	var processor := new_processor(1)
	var now := processor.run_delayed(func() -> int: return 3, 0)
	assert_eq(processor.get_stats().delayed, 0)
	assert_eq(await now.finished, 3)
	expect_error("AsyncTaskProcessor.run_delayed: delay_msec -5 is negative")
	var refused := processor.run_delayed(func() -> int: return 4, -5)
	assert_eq(refused.id, -1)
	assert_eq(await refused.finished, null)
	expect_error("AsyncTaskProcessor.run_delayed: the task Callable is invalid")
	assert_eq(processor.run_delayed(Callable(), 10).id, -1)
	processor.queue_free()


func test_freeing_the_processor_with_delayed_tasks_releases_their_handles() -> void:
	var processor := new_processor(2)
	var runs := AtomicCounter.new()
	var handles := []
	var finished := []
	for i in 5:
		var handle := processor.run_delayed(func() -> void: runs.increment(), 3_600_000 + i)
		handle.finished.connect(func(result: Variant) -> void: finished.append([i, result]))
		handles.append(handle)
	processor.free()  # Joins the timer thread and the workers.
	for handle: TaskHandle in handles:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	# Released at the next frame, every one once.
	assert_true(await frames_until(func() -> bool: return finished.size() == 5))
	finished.sort()
	assert_eq(finished, [[0, null], [1, null], [2, null], [3, null], [4, null]])
	assert_eq(runs.get_count(), 0)


func test_a_delayed_task_whose_object_was_freed_meanwhile_is_dropped() -> void:
	var processor := new_processor(1)
	var target := Node.new()
	var handle := processor.run_delayed(target.get_instance_id, 30)
	target.free()
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(processor.get_stats().dropped_tasks, 1)
	processor.queue_free()


func test_yield_now_runs_the_queued_tasks_of_its_priority_and_above() -> void:
	var processor := new_processor(1)
	var started := Semaphore.new()
	var go := Semaphore.new()
	var order := []
	var long := processor.run(func() -> Array:
		started.post()
		go.wait()
		var ran := 0
		var calls := 0
		while ran < 10:  # A long task's loop, keeping the queue moving.
			ran += AsyncTaskProcessor.yield_now()
			calls += 1
		return [calls, ran])
	long.finished.connect(func(_r: Array) -> void: order.append("long"))
	started.wait()
	for tag in 10:
		var priority: int = LEVELS[2] if tag % 2 == 0 else LEVELS[1]
		processor.submit_task(func() -> int: return tag, func(t: int) -> void: order.append(t),
				priority)
	processor.submit_task(func() -> String: return "low", func(t: String) -> void: order.append(t),
			AsyncTaskProcessor.PRIORITY_LOW)
	go.post()
	assert_true(await frames_until(func() -> bool: return order.size() == 12))
	assert_eq(long.get_result(), [1, 10], "all ten in its first call")
	# The low one waited for the worker, after the long task returned.
	assert_eq(order, [0, 2, 4, 6, 8, 1, 3, 5, 7, 9, "long", "low"])
	processor.queue_free()


func test_yield_now_outside_a_task_returns_zero() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var queued := processor.run(func() -> int: return 1, AsyncTaskProcessor.PRIORITY_HIGH)
	assert_eq(AsyncTaskProcessor.yield_now(), 0)
	assert_eq(run_threads(2, func(_i: int) -> int: return AsyncTaskProcessor.yield_now()), [0, 0])
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	gate.post()
	assert_eq(await queued.finished, 1)
	processor.queue_free()


func test_a_task_run_by_yield_now_that_waits_for_the_yielder_is_refused() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var yielder := processor.run(func() -> int: return AsyncTaskProcessor.yield_now())
	var waiter := processor.run(func() -> Variant: return processor.wait_for_task(yielder.id))
	expect_error(": a cycle of waits that could never end; this wait returns null")
	gate.post()
	assert_eq(await yielder.finished, 1)
	assert_eq(waiter.get_result(), null)
	assert_eq(waiter.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	processor.queue_free()


func test_a_delayed_task_may_schedule_the_next_from_inside_itself() -> void:
	var processor := new_processor(1)
	var links := AtomicCounter.new()
	var done := Semaphore.new()
	var link := func(self_ref: Callable) -> void:
		if links.increment() < 3:
			# From the worker: the next link, delayed in turn.
			processor.run_delayed(self_ref.bind(self_ref), 10)
		else:
			done.post()
	processor.run_delayed(link.bind(link), 10)
	assert_true(await frames_until(func() -> bool: return processor.get_stats().completed == 3))
	assert_eq(links.get_count(), 3)
	assert_true(done.try_wait())
	assert_eq(processor.get_stats().delayed, 0)
	processor.queue_free()


func test_the_processor_freed_while_delivering_a_delayed_task_cancels_the_others() -> void:
	var processor := new_processor(1)
	var finished := []
	var later := processor.run_delayed(func() -> int: return 2, 3_600_000)
	later.finished.connect(func(result: Variant) -> void: finished.append(["later", result]))
	var first := processor.run_delayed(func() -> int: return 1, 10)
	first.finished.connect(func(result: Variant) -> void:
		finished.append(["first", result])
		processor.free())  # From inside the processor's own delivery.
	assert_true(await frames_until(func() -> bool: return finished.size() == 2))
	assert_eq(finished, [["first", 1], ["later", null]])
	assert_eq(later.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
