extends "res://tests/support/processor_test_case.gd"
## What a real game does to an AsyncTaskProcessor and the dispatcher: reparent, pause, leave the
## tree, free from its own task, free the level a blocked task waits on.


func test_reparenting_keeps_workers_and_tasks_in_flight() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var handle := processor.run(func() -> int: return 7)
	var other := Node.new()
	add_child(other)
	processor.reparent(other)
	assert_true(processor.is_running(), "leaving the tree does not stop the workers")
	gate.post()
	assert_eq(await handle.finished, 7, "the task completed and delivered in the new place")
	assert_true(processor.submit_task(func() -> int: return 1) > 0, "later submits are accepted")
	other.remove_child(processor)
	add_child(processor)
	assert_eq(await processor.run(func() -> int: return 8).finished, 8)
	other.queue_free()
	processor.queue_free()


func test_a_processor_never_added_to_the_tree_runs_and_delivers() -> void:
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 1
	# Autostart starts the workers at the first submit; delivery runs every frame.
	assert_eq(await processor.run(func() -> int: return 3).finished, 3)
	var results := []
	# Submitted from another thread first: delivery is hooked through the dispatcher.
	var fresh := AsyncTaskProcessor.new()
	run_threads(1, func(_i: int) -> void:
		fresh.submit_task(func() -> int: return 4, func(r: int) -> void: results.append(r)))
	assert_true(await frames_until(func() -> bool: return results == [4]))
	processor.free()
	fresh.free()


func test_a_stopped_processor_outside_the_tree_refuses_with_a_handle_that_still_finishes() -> void:
	var processor := AsyncTaskProcessor.new()
	processor.autostart = false
	expect_error("AsyncTaskProcessor.run: the workers are not running")
	var handle := processor.run(func() -> int: return 1)
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	processor.free()


func test_delivery_follows_the_process_mode_while_paused() -> void:
	var pausable := new_processor(1)
	var always := new_processor(1)
	always.process_mode = Node.PROCESS_MODE_ALWAYS
	var delivered := []
	get_tree().paused = true
	pausable.submit_task(func() -> String: return "pausable", func(r: String) -> void: delivered.append(r))
	always.submit_task(func() -> String: return "always", func(r: String) -> void: delivered.append(r))
	var arrived := await frames_until(func() -> bool: return delivered.size() == 1)
	for i in 5:
		await get_tree().process_frame
	var while_paused := delivered.duplicate()
	get_tree().paused = false
	assert_true(arrived)
	assert_eq(while_paused, ["always"], "only PROCESS_MODE_ALWAYS delivers during a pause")
	assert_true(await frames_until(func() -> bool: return delivered.size() == 2), "the rest after it")
	pausable.queue_free()
	always.queue_free()


func test_the_built_in_dispatcher_serves_call_blocking_during_a_pause() -> void:
	get_tree().paused = true
	var got := []
	var thread := Thread.new()
	thread.start(func() -> void: got.append(MainThreadDispatcher.call_blocking(func() -> int: return 5, 5000)))
	await frames_until(func() -> bool: return got.size() == 1)
	get_tree().paused = false
	thread.wait_to_finish()
	assert_eq(got, [5])


func test_call_blocking_says_so_when_the_scene_dispatcher_cannot_drain() -> void:
	var node := MainThreadDispatcher.new()
	add_child(node)
	get_tree().paused = true
	await get_tree().process_frame
	await get_tree().process_frame
	var started := Time.get_ticks_msec()
	expect_error("cannot drain while the tree is paused")
	var result: Variant = run_threads(1, func(_i: int) -> Variant:
		return MainThreadDispatcher.call_blocking(func() -> int: return 5, 5000))[0]
	var took := Time.get_ticks_msec() - started
	get_tree().paused = false
	node.process_mode = Node.PROCESS_MODE_DISABLED
	await get_tree().process_frame
	await get_tree().process_frame
	expect_error("its process_mode is disabled")
	run_threads(1, func(_i: int) -> Variant:
		return MainThreadDispatcher.call_blocking(func() -> int: return 5, 5000))
	node.free()
	assert_eq(result, null)
	assert_true(took < 2500, "it failed at once, not after its 5 s timeout (%d ms)" % took)


func test_a_processor_freed_by_its_own_task_finishes_every_handle() -> void:
	var processor := new_processor(2)
	var handles: Array[TaskHandle] = []
	handles.append(processor.run(func() -> int:
		MainThreadDispatcher.dispatch(processor.queue_free)
		return 1))
	handles.append(processor.run(func() -> void:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200)))
	for i in 20:
		handles.append(processor.run(func() -> int:
			OS.delay_usec(2000)
			return i))
	var finished := [0]
	for handle in handles:
		handle.finished.connect(func(_r: Variant) -> void: finished[0] += 1)
	var id := processor.get_instance_id()
	assert_true(await frames_until(func() -> bool: return not is_instance_id_valid(id)))
	assert_true(await frames_until(func() -> bool: return finished[0] == handles.size()),
			"%d of %d finished" % [finished[0], handles.size()])
	for handle in handles:
		assert_true(handle.is_done())


func test_freeing_a_level_whose_task_waits_in_call_blocking_is_immediate() -> void:
	for timeout in [-1, 1000]:
		var level := Node.new()
		add_child(level)
		var processor := AsyncTaskProcessor.new()
		processor.worker_count = 1
		level.add_child(processor)
		var entered := Semaphore.new()
		var handle := processor.run(func() -> Variant:
			entered.post()
			# The main thread is inside level.free() from now on, so this cannot be served.
			OS.delay_msec(20)
			return MainThreadDispatcher.call_blocking(level.get_name, timeout))
		entered.wait()
		var started := Time.get_ticks_msec()
		level.free()
		var took := Time.get_ticks_msec() - started
		assert_true(took < 2000, "released at once, not after stop_timeout_msec (%d ms, timeout %d)" % [took, timeout])
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_cancelling_a_task_blocked_in_pop_or_push_ends_its_wait() -> void:
	var processor := new_processor(2)
	var empty := ThreadSafeQueue.create()
	var full := ThreadSafeQueue.create(1)
	full.push(1)
	var popped := processor.run(func() -> Variant: return empty.pop())
	var pushed := processor.run(func() -> bool: return full.push(2))
	while processor.get_stats().running < 2:
		OS.delay_usec(100)
	OS.delay_msec(20)
	assert_true(popped.cancel())
	assert_true(pushed.cancel())
	assert_true(processor.wait_all(5000), "both waits ended")
	assert_eq(popped.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(pushed.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(full.drain(), [1], "the interrupted push queued nothing")
	processor.queue_free()


func test_cancelling_a_task_blocked_in_select_or_a_queue_for_loop_ends_its_wait() -> void:
	var processor := new_processor(2)
	var empty := ThreadSafeQueue.create_rendezvous()
	var never := ThreadSafeQueue.new()
	var selected := processor.run(func() -> Array:
		return ThreadSafeQueue.select([empty, ThreadSafeQueue.after(600_000)]))
	var looped := processor.run(func() -> int:
		var count := 0
		for value: Variant in never:
			count += 1
		return count)
	while processor.get_stats().running < 2:
		OS.delay_usec(100)
	OS.delay_msec(20)
	assert_true(selected.cancel())
	assert_true(looped.cancel())
	assert_true(processor.wait_all(5000), "both waits ended")
	assert_eq(selected.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(looped.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	processor.queue_free()
