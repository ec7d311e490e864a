extends "res://tests/support/processor_test_case.gd"
## wait_for_task() and wait_all() on the main thread and on workers, and bounded stops; waits that
## cannot overflow a stack or deadlock: chains of waiting tasks, cycles across processors, the
## main thread running a queued task itself.


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


## Link [param i] of a chain of [param n] tasks, each waiting for the next (the issue's example).
func _link(processor: AsyncTaskProcessor, i: int, n: int) -> int:
	if i == n:
		return 0
	var id := processor.submit_task(_link.bind(processor, i + 1, n))
	return processor.wait_for_task(id) + 1


func test_a_chain_of_10000_tasks_each_waiting_for_the_next_completes_on_two_workers() -> void:
	var processor := new_processor(2)
	# Each worker runs at most 128 links nested in its waits; spare workers, added while every
	# worker waits, run the rest. Without the bound, ~300 links overflow a worker's stack.
	assert_eq(await processor.run(_link.bind(processor, 0, 10000)).finished, 10000)
	assert_true(processor.wait_all(10000))
	var stats := processor.get_stats()
	assert_eq([stats.completed, stats.failed, stats.pending, stats.running], [10001, 0, 0, 0])
	var deadline := Time.get_ticks_msec() + 10000
	while processor.get_stats().spare_workers > 0 and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	assert_eq(processor.get_stats().spare_workers, 0, "idle spare workers exit")
	assert_eq(await processor.run(_link.bind(processor, 0, 300)).finished, 300, "and it runs on")
	processor.queue_free()


## [param count] processors named [param prefix]0, [param prefix]1...; task i of processor i waits for task i + 1 of the
## next, and the last for the first. Returns [processors, task ids, results]: each result is
## [what its wait returned, i].
func _wait_in_a_cycle(count: int, prefix: String) -> Array:
	var processors: Array[AsyncTaskProcessor] = []
	for i in count:
		var processor := AsyncTaskProcessor.new()
		processor.name = "%s%d" % [prefix, i]
		processor.worker_count = 1
		add_child(processor)
		processors.append(processor)
	var ids := []
	ids.resize(count)
	var known := Semaphore.new()
	for i in count:
		var next := processors[(i + 1) % count]
		ids[i] = processors[i].submit_task(func() -> Array:
			known.wait()
			return [next.wait_for_task(ids[(i + 1) % count]), i])
	for i in count:
		expect_error("task %d of AsyncTaskProcessor '%s%d'" % [ids[i], prefix, i])
	expect_error(": a cycle of waits that could never end; this wait returns null")
	for i in count:
		known.post()
	var results := []
	for i in count:
		results.append(processors[i].wait_for_task(ids[i]))
	return [processors, ids, results]


## The one wait that closed the cycle got null; the others got the result of the task they
## waited for, so every task ended.
func _assert_one_wait_refused(results: Array) -> void:
	var count := results.size()
	var refused := []
	for i in count:
		if results[i][0] == null:
			refused.append(i)
	assert_eq(refused.size(), 1, "exactly one wait refused: %s" % [results])
	for i in count:
		if i != refused[0]:
			assert_eq(results[i][0], results[(i + 1) % count], "task %d got its result" % i)


func test_tasks_of_two_processors_waiting_for_each_other_are_reported_and_released() -> void:
	var cycle := _wait_in_a_cycle(2, "Pair")
	_assert_one_wait_refused(cycle[2])
	for processor in cycle[0]:
		processor.queue_free()


func test_a_cycle_of_waits_through_three_processors_is_reported_and_released() -> void:
	var cycle := _wait_in_a_cycle(3, "Ring")
	_assert_one_wait_refused(cycle[2])
	for processor in cycle[0]:
		assert_eq(processor.get_stats().completed, 1)
		processor.queue_free()


func test_a_task_waiting_for_itself_is_reported_not_hung() -> void:
	# Never in the tree, so it has no name: the error names it by its instance id.
	var processor := AsyncTaskProcessor.new()
	assert_true(processor.start_workers(1))
	var ids := {}
	var known := Semaphore.new()
	ids.me = processor.submit_task(func() -> Variant:
		known.wait()
		return processor.wait_for_task(ids.me))
	expect_error(("AsyncTaskProcessor.wait_for_task: task %d of AsyncTaskProcessor #%d waits for "
			+ "itself: a cycle of waits that could never end") % [ids.me, processor.get_instance_id()])
	known.post()
	assert_eq(processor.wait_for_task(ids.me, 10000), null)
	assert_eq(processor.get_task_status(ids.me), AsyncTaskProcessor.STATUS_COMPLETED)
	processor.free()


## Holds every worker of [param processor] until [param release] gets an item or 5 s passed,
## so that a test that needs the main thread to run a task fails, rather than hangs, without it.
func _hold_every_worker(processor: AsyncTaskProcessor, release: ThreadSafeQueue) -> Thread:
	var gates := []
	for i in processor.get_stats().workers:
		gates.append(hold_worker(processor))
	var releaser := Thread.new()
	releaser.start(func() -> void:
		release.pop(5000)
		for gate: Semaphore in gates:
			gate.post())
	return releaser


func test_the_main_thread_runs_a_queued_task_itself_while_every_worker_is_busy() -> void:
	var processor := new_processor(2)
	var release := ThreadSafeQueue.create()
	var releaser := _hold_every_worker(processor, release)
	var queued := processor.submit_task(func() -> int:
		AsyncTaskProcessor.report_progress(0.5)
		return OS.get_thread_caller_id())
	assert_eq(processor.wait_for_task(queued), OS.get_main_thread_id(), "the main thread ran it")
	assert_eq(processor.get_task_status(queued), AsyncTaskProcessor.STATUS_COMPLETED)
	var stats := processor.get_stats()
	assert_eq([stats.busy_workers, stats.running], [2, 2], "both workers still held")
	release.push(true)
	releaser.wait_to_finish()
	assert_true(processor.wait_all(10000))
	processor.queue_free()


func test_wait_all_from_a_task_the_main_thread_runs_is_refused() -> void:
	var processor := new_processor(1)
	var release := ThreadSafeQueue.create()
	var releaser := _hold_every_worker(processor, release)
	var queued := processor.submit_task(func() -> Array:
		return [processor.wait_all(), OS.get_thread_caller_id() == OS.get_main_thread_id()])
	expect_error("AsyncTaskProcessor.wait_all: called from one of its own tasks")
	assert_eq(processor.wait_for_task(queued), [false, true], "refused on the main thread")
	release.push(true)
	releaser.wait_to_finish()
	assert_true(processor.wait_all(10000))
	processor.queue_free()
