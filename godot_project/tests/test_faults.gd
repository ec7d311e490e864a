extends "res://tests/support/processor_test_case.gd"
## Faults that cross classes: scene changes with work in flight, targets freed mid-flight, calls
## from the wrong thread, callbacks Godot cannot call, out-of-range sizes. docs/reliability.md
## lists every fault case and the test that covers it.

var _finished := 0


func _count_finished(_result: Variant) -> void:
	_finished += 1


func _drain_dispatcher() -> void:
	while MainThreadDispatcher.pending_count() > 0:
		MainThreadDispatcher.process_queue()


## A level scene: a processor and a player node, as a game would have them.
func _level_scene() -> PackedScene:
	var level := Node.new()
	level.name = "Level"
	var processor := AsyncTaskProcessor.new()
	processor.name = "Processor"
	processor.worker_count = 2
	var player := Node2D.new()
	player.name = "Player"
	for child: Node in [processor, player]:
		level.add_child(child)
		child.owner = level
	var packed := PackedScene.new()
	packed.pack(level)
	level.free()
	return packed


func _empty_scene() -> PackedScene:
	var empty := Node.new()
	empty.name = "Empty"
	var packed := PackedScene.new()
	packed.pack(empty)
	empty.free()
	return packed


## How many objects exist, once what was freed or released lately is gone (a freed scene goes at
## the end of its frame, and a PackedScene a frame after it was instantiated).
func _settled_objects() -> int:
	for i in 3:
		await get_tree().process_frame
	return int(Performance.get_monitor(Performance.OBJECT_COUNT))


func test_a_scene_change_with_tasks_and_dispatches_in_flight_ends_or_drops_everything() -> void:
	const QUICK := 20
	const BLOCKERS := 2
	const QUEUED := 100
	const DISPATCHES := 100  # Of each of three kinds.
	var tree := get_tree()
	_drain_dispatcher()
	# The first scene change of a run leaves two objects that Godot keeps: done once beforehand,
	# so that the count below compares like with like.
	tree.change_scene_to_packed(_empty_scene())
	assert_true(await frames_until(func() -> bool: return tree.current_scene != null))
	tree.unload_current_scene()
	var objects_before := await _settled_objects()
	var dispatch_before := MainThreadDispatcher.get_stats()
	tree.change_scene_to_packed(_level_scene())
	assert_true(await frames_until(func() -> bool: return tree.current_scene != null))
	var level := tree.current_scene
	var processor: AsyncTaskProcessor = level.get_node("Processor")
	var player: Node2D = level.get_node("Player")
	assert_true(processor.is_running(), "the processor started when the scene entered the tree")
	_finished = 0
	var handles: Array[TaskHandle] = []
	# Tasks that completed but whose results were not delivered yet (no frame passes below).
	for i in QUICK:
		handles.append(processor.run(func() -> int: return i))
	while processor.get_stats().completed < QUICK:
		OS.delay_usec(100)
	# Tasks running on both workers until they are cancelled, and tasks queued behind them
	# whose callbacks target a node of the scene.
	for i in BLOCKERS:
		handles.append(processor.run(func() -> void:
			while not AsyncTaskProcessor.is_cancelled():
				OS.delay_usec(200)))
	while processor.get_stats().running < BLOCKERS:
		OS.delay_usec(100)
	for i in QUEUED:
		processor.submit_task(func() -> String: return "renamed", player.set_name)
	for i in handles.size():  # By index: a loop variable would hold the last handle to the end.
		handles[i].finished.connect(_count_finished)
	# Work for the main thread, queued by another thread, that targets the scene's node.
	run_threads(1, func(_i: int) -> void:
		for i in DISPATCHES:
			MainThreadDispatcher.dispatch(player.set_name.bind("dispatched"))
			MainThreadDispatcher.safe_set(player, &"position", Vector2(i, i))
			MainThreadDispatcher.safe_call(player, &"set_meta", ["step", i]))
	# The change, in the same frame: the level leaves the tree now and is freed at the frame's end.
	tree.change_scene_to_packed(_empty_scene())
	assert_true(processor.is_running(), "leaving the tree does not stop the processor: its free does")
	var level_id := level.get_instance_id()  # A lambda capturing the level itself would outlive it.
	assert_true(await frames_until(func() -> bool: return not is_instance_id_valid(level_id)))
	assert_true(await frames_until(func() -> bool: return _finished == QUICK + BLOCKERS),
			"the free ended every task and released every handle")
	assert_true(await frames_until(func() -> bool: return MainThreadDispatcher.pending_count() == 0))
	assert_eq(_finished, QUICK + BLOCKERS, "once")
	var statuses := handles.map(func(handle: TaskHandle) -> int: return handle.get_status())
	assert_eq(statuses.count(AsyncTaskProcessor.STATUS_COMPLETED), QUICK)
	assert_eq(statuses.count(AsyncTaskProcessor.STATUS_CANCELLED), BLOCKERS)
	var dispatch_after := MainThreadDispatcher.get_stats()
	# One more: the freed processor's release of the handles it had not delivered.
	assert_eq(dispatch_after.dispatched - dispatch_before.dispatched, 3 * DISPATCHES + 1)
	assert_eq(dispatch_after.executed - dispatch_before.executed, 3 * DISPATCHES + 1,
			"each dispatched item was taken off the queue (run, or dropped as its node was freed)")
	assert_eq(dispatch_after.rejected, dispatch_before.rejected)
	handles.clear()
	tree.unload_current_scene()
	assert_eq(await _settled_objects(), objects_before, "no object left behind")


func test_freeing_a_processor_outside_the_tree_joins_its_workers() -> void:
	# Freed without leaving the tree: what a hot reload of the extension does to every instance.
	var processor := AsyncTaskProcessor.new()
	assert_true(processor.start_workers(2))
	var running := []
	for i in 2:
		running.append(processor.run(func() -> void:
			while not AsyncTaskProcessor.is_cancelled():
				OS.delay_usec(200)))
	var queued := processor.run(func() -> int: return 1)
	while processor.get_stats().running < 2:
		OS.delay_usec(100)
	processor.free()
	for handle: TaskHandle in running:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "ended before free() returned")
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_a_callback_godot_cannot_call_is_reported_and_delivery_goes_on() -> void:
	var processor := new_processor(1)
	var got := []
	var completed := []
	processor.task_completed.connect(func(id: int, _result: Variant) -> void: completed.append(id))
	var two := processor.submit_task(func() -> int: return 2, func(_a: int, _b: int) -> void: got.append("two"))
	var typed := processor.submit_task(func() -> int: return 3, func(_text: String) -> void: got.append("typed"))
	var fine := processor.submit_task(func() -> int: return 4, func(result: int) -> void: got.append(result))
	expect_error("AsyncTaskProcessor: the callback of task %d was not called: Godot could not call it: it needs 2 argument(s), it was given 1" % two)
	expect_error("AsyncTaskProcessor: the callback of task %d was not called: Godot could not call it: argument 1 has the wrong type" % typed)
	assert_true(await frames_until(func() -> bool: return completed.size() == 3))
	assert_eq(got, [4])
	assert_eq(completed, [two, typed, fine], "task_completed is emitted for each all the same")
	processor.queue_free()


func test_a_callback_already_invalid_at_submit_is_refused() -> void:
	var processor := new_processor(1)
	var freed := Node.new()
	var callback := freed.set_name
	freed.free()
	expect_error("AsyncTaskProcessor.submit_task: the callback Callable is invalid (its object was freed or the method does not exist)")
	assert_eq(processor.submit_task(func() -> int: return 1, callback), -1)
	expect_error("AsyncTaskProcessor.submit_group: the callback Callable is invalid")
	var group := processor.submit_group(func(i: int) -> int: return i, 3, callback)
	assert_eq(await group.finished, null)
	assert_eq(group.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(processor.get_stats().submitted, 0, "nothing was queued")
	processor.queue_free()


func test_stop_workers_from_its_own_task_does_not_wait_for_itself() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.stop_workers: called from one of its own tasks with wait = true")
	var handle := processor.run(func() -> bool:
		processor.stop_workers()
		return AsyncTaskProcessor.is_cancelled())
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "the stop asked the task itself to cancel")
	assert_false(processor.is_running())
	processor.queue_free()


func test_process_completed_off_the_main_thread_is_refused() -> void:
	var processor := new_processor(1)
	var got := []
	processor.submit_task(func() -> int: return 1, func(result: int) -> void: got.append(result))
	assert_true(processor.wait_all())
	processor.submit_task(func() -> int: return 2, func(result: int) -> void: got.append(result))
	while processor.get_stats().completed < 2:
		OS.delay_usec(100)
	expect_error("AsyncTaskProcessor.process_completed: called from a worker thread")
	assert_eq(run_threads(1, func(_i: int) -> int: return processor.process_completed()), [0])
	assert_eq(got, [1], "nothing was delivered off the main thread")
	assert_eq(processor.process_completed(), 1)
	assert_eq(got, [1, 2])
	processor.queue_free()


func test_dispatched_calls_whose_target_is_freed_mid_flight_are_dropped_100_times() -> void:
	_drain_dispatcher()
	var before := MainThreadDispatcher.get_stats()
	var nodes := []
	for i in 100:
		nodes.append(Node.new())
	run_threads(1, func(_i: int) -> void:
		for node: Node in nodes:
			assert_true(MainThreadDispatcher.dispatch(node.set_name.bind("late"))))
	for node: Node in nodes:
		node.free()
	_drain_dispatcher()
	var after := MainThreadDispatcher.get_stats()
	assert_eq(after.dispatched - before.dispatched, 100)
	assert_eq(after.dropped - before.dropped, 100, "every call on a freed node was skipped")


func test_negative_zero_and_huge_sizes_and_timeouts() -> void:
	expect_error("MainThreadDispatcher.set_frame_budget_usec: -1 is negative")
	MainThreadDispatcher.set_frame_budget_usec(-1)
	expect_error("MainThreadDispatcher.set_max_per_frame: -3 is negative")
	MainThreadDispatcher.set_max_per_frame(-3)
	var stats := MainThreadDispatcher.get_stats()
	assert_eq([stats.frame_budget_usec, stats.max_per_frame], [2000, 0], "a refused setting changes nothing")
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.submit_group: count 1099511627776 is not between 0 and 16777216")
	assert_eq(await processor.submit_group(func(_i: int) -> void: pass, 1 << 40).finished, null)
	var gate := hold_worker(processor)
	var queued := processor.submit_task(func() -> int: return 5)
	assert_eq(processor.wait_for_task(queued, 0), null, "a zero timeout returns at once")
	gate.post()
	expect_error("AsyncTaskProcessor.wait_for_task: timeout_ms -7 is not valid; pass milliseconds (0 or more), or -1 to wait as long as it takes.")
	assert_eq(processor.wait_for_task(queued, -7), null, "a negative timeout other than -1 is refused")
	expect_error("AsyncTaskProcessor.wait_all: timeout_ms -2 is not valid")
	assert_false(processor.wait_all(-2))
	expect_error("MainThreadDispatcher.call_blocking: timeout_ms -5 is not valid")
	assert_eq(MainThreadDispatcher.call_blocking(func() -> int: return 1, -5), null)
	assert_eq(processor.wait_for_task(queued, -1), 5, "-1 waits as long as it takes")
	assert_true(processor.wait_all(1 << 40), "a huge timeout is a long one, not an overflow")
	var queue := ThreadSafeQueue.create(1)
	assert_true(queue.push(1, 1 << 40))
	assert_eq(queue.pop(1 << 40), 1)
	var lock := ReadWriteLock.new()
	assert_true(lock.try_write_lock(1 << 40))
	assert_true(lock.write_unlock())
	processor.queue_free()
