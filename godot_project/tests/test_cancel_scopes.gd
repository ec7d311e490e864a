extends "res://tests/support/processor_test_case.gd"
## Cancelling by scope: TaskHandle.bind_to(node), AsyncTaskProcessor.cancel_all(), cancel_owner()
## and run_keyed() ("latest request wins").


## A task that loops until it is cancelled, counting in [param saw_cancel] that it saw it.
func _until_cancelled(saw_cancel: AtomicCounter) -> Callable:
	return func() -> String:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200)
		saw_cancel.increment()
		return "stopped"


func test_freeing_the_bound_node_cancels_its_running_and_queued_tasks() -> void:
	var processor := new_processor(1)
	var node := Node.new()
	add_child(node)
	var saw_cancel := AtomicCounter.new()
	var running := processor.run(_until_cancelled(saw_cancel))
	assert_eq(running.bind_to(node), running, "bind_to returns the handle")
	var queued := processor.run(func() -> int: return 1).bind_to(node)
	var unbound := processor.run(func() -> int: return 2)
	assert_true(await frames_until(func() -> bool: return running.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	node.free()
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "cancelled as the node was freed")
	assert_eq(await running.wait(), null)
	assert_eq(running.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(saw_cancel.get_count(), 1, "the running task saw is_cancelled()")
	assert_eq(await unbound.wait(), 2, "a task not bound to it runs on")
	processor.queue_free()


func test_a_bound_group_is_cancelled_and_its_callback_skipped() -> void:
	var processor := new_processor(2)
	var node := Node.new()
	add_child(node)
	var saw_cancel := AtomicCounter.new()
	var called_back := AtomicCounter.new()
	var group := processor.submit_group(func(_i: int) -> int:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200)
		saw_cancel.increment()
		return 0, 2, func(_results: Array) -> void: called_back.increment()).bind_to(node)
	assert_true(await frames_until(func() -> bool: return group.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	node.queue_free()
	assert_eq(await group.wait(), null)
	assert_eq(group.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	for i in 3:
		await get_tree().process_frame
	assert_eq(called_back.get_count(), 0, "the callback was skipped")
	assert_true(saw_cancel.get_count() >= 1)
	processor.queue_free()


func test_a_bound_task_that_completed_before_its_node_was_freed_skips_its_callback() -> void:
	var processor := new_processor(1)
	var node := Node.new()
	add_child(node)
	var called_back := AtomicCounter.new()
	var dropped_before: int = processor.get_stats().dropped_callbacks
	var group := processor.submit_group(func(i: int) -> int: return i, 2,
			func(_results: Array) -> void: called_back.increment()).bind_to(node)
	while not group.is_done():
		OS.delay_usec(100)  # No frame passes: completed, not delivered yet.
	node.free()
	assert_eq(await group.wait(), [0, 1], "the task itself had completed")
	for i in 3:
		await get_tree().process_frame
	assert_eq(called_back.get_count(), 0, "its node is gone: the callback is skipped")
	assert_eq(processor.get_stats().dropped_callbacks - dropped_before, 1)
	processor.queue_free()


func test_the_bound_node_freed_by_the_task_own_callback() -> void:
	var processor := new_processor(2)
	var node := Node.new()
	add_child(node)
	var saw_cancel := AtomicCounter.new()
	var long := processor.run(_until_cancelled(saw_cancel)).bind_to(node)
	var freeing := processor.submit_group(func(i: int) -> int: return i, 1,
			func(_results: Array) -> void: node.free()).bind_to(node)
	assert_eq(await freeing.wait(), [0])
	assert_eq(await long.wait(), null, "the callback freed the node: the other bound task ended")
	assert_eq(long.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(freeing.get_status(), AsyncTaskProcessor.STATUS_COMPLETED, "its own task had ended")
	assert_eq(saw_cancel.get_count(), 1)
	processor.queue_free()


func test_a_bound_node_freed_on_another_thread_cancels_its_tasks() -> void:
	var processor := new_processor(1)
	var node := Node.new()  # Outside the tree: any thread may free it.
	var saw_cancel := AtomicCounter.new()
	var running := processor.run(_until_cancelled(saw_cancel)).bind_to(node)
	var pending := TaskHandle.create_pending().bind_to(node)
	assert_true(await frames_until(func() -> bool: return running.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	var thread := Thread.new()
	thread.start(func() -> void: node.free())
	thread.wait_to_finish()
	assert_eq(pending.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "cancelled on the freeing thread")
	assert_eq(await running.wait(), null)
	assert_eq(running.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(saw_cancel.get_count(), 1)
	assert_eq(await pending.wait(), null)
	processor.queue_free()


func test_bind_to_from_another_thread_binds_at_the_next_drain() -> void:
	var node := Node.new()
	add_child(node)
	var bound := TaskHandle.create_pending()
	var too_late := TaskHandle.create_pending()
	var doomed := Node.new()
	var thread := Thread.new()
	thread.start(func() -> void:
		bound.bind_to(node)
		too_late.bind_to(doomed))
	thread.wait_to_finish()
	doomed.free()  # Freed before the main thread made the binding: the task is cancelled then.
	assert_true(await frames_until(func() -> bool: return too_late.get_status() == AsyncTaskProcessor.STATUS_CANCELLED))
	assert_eq(bound.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	node.free()
	assert_eq(bound.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_bind_to_bad_input_is_reported_and_binds_nothing() -> void:
	var handle := TaskHandle.create_pending()
	expect_error("TaskHandle.bind_to: the node is null, so the task was not bound")
	assert_eq(handle.bind_to(null), handle)
	var freed := Node.new()
	freed.free()
	expect_error("TaskHandle.bind_to: the node was freed, so the task was not bound")
	handle.bind_to(freed)
	expect_error("TaskHandle.bind_to: the node is a RefCounted, not a Node")
	handle.bind_to(RefCounted.new())
	expect_error("TaskHandle.bind_to: the node is of type")
	handle.bind_to(5)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	assert_true(handle.complete(1))


func test_a_node_with_many_bound_tasks_keeps_a_short_list() -> void:
	var processor := new_processor(2)
	var node := Node.new()
	add_child(node)
	for i in 200:
		await processor.run(func() -> int: return i).bind_to(node).wait()
	var list: RefCounted = node.get_meta("_threadkit_bound_tasks")
	assert_true(list != null)
	var saw_cancel := AtomicCounter.new()
	var last := processor.run(_until_cancelled(saw_cancel)).bind_to(node)
	assert_eq(processor.cancel_owner(node), 1, "only the unfinished one is left to cancel")
	assert_eq(await last.wait(), null)
	node.free()
	processor.queue_free()


func test_cancel_all_cancels_queued_and_running_tasks_and_keeps_the_workers() -> void:
	var processor := new_processor(1)
	var saw_cancel := AtomicCounter.new()
	var running := processor.run(_until_cancelled(saw_cancel))
	assert_true(await frames_until(func() -> bool: return running.get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	var queued := []
	for i in 10:
		queued.append(processor.run(func() -> int: return i))
	var ids := []
	for i in 5:
		ids.append(processor.submit_task(func() -> int: return i))
	assert_eq(processor.cancel_all(), 16, "10 + 5 queued, 1 running")
	assert_eq(await running.wait(), null)
	assert_eq(saw_cancel.get_count(), 1)
	for handle: TaskHandle in queued:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	for id: int in ids:
		assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_true(processor.is_running(), "the workers keep running")
	assert_eq(await processor.run(func() -> String: return "after").wait(), "after")
	assert_eq(processor.cancel_all(), 0, "nothing left to cancel")
	processor.queue_free()


func test_cancel_owner_cancels_only_this_processors_tasks_bound_to_that_node() -> void:
	var a := new_processor(1)
	var b := new_processor(1)
	var gates := [hold_worker(a), hold_worker(b)]
	var owner := Node.new()
	var other := Node.new()
	add_child(owner)
	add_child(other)
	var mine := []
	for i in 3:
		mine.append(a.run(func() -> int: return i).bind_to(owner))
	var of_other := a.run(func() -> int: return 10).bind_to(other)
	var of_b := b.run(func() -> int: return 20).bind_to(owner)
	var unbound := a.run(func() -> int: return 30)
	assert_eq(a.cancel_owner(owner), 3)
	for handle: TaskHandle in mine:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(a.cancel_owner(owner), 0, "cancelled already")
	for gate: Semaphore in gates:
		gate.post()
	assert_eq(await of_other.wait(), 10)
	assert_eq(await of_b.wait(), 20)
	assert_eq(await unbound.wait(), 30)
	expect_error("AsyncTaskProcessor.cancel_owner: the node is null, so nothing was cancelled")
	assert_eq(a.cancel_owner(null), 0)
	expect_error("AsyncTaskProcessor.cancel_owner: called off the main thread")
	var thread := Thread.new()
	thread.start(func() -> int: return a.cancel_owner(owner))
	assert_eq(thread.wait_to_finish(), 0)
	owner.free()
	other.free()
	a.queue_free()
	b.queue_free()


func test_run_keyed_1000_times_in_a_loop_completes_exactly_one() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var ran := AtomicCounter.new()
	var before: Dictionary = processor.get_stats()
	var last: TaskHandle
	for i in 1000:
		last = processor.run_keyed(&"path", func() -> int:
			ran.increment()
			return i)
	assert_eq(processor.get_stats().keyed_tasks, 1, "one key, one latest task")
	gate.post()
	assert_eq(await last.wait(), 999)
	assert_eq(ran.get_count(), 1, "only the latest ran")
	assert_eq(processor.get_stats().keyed_tasks, 0, "the key is forgotten once its task ended")
	assert_true(await frames_until(func() -> bool: return processor.get_stats().completed - before.completed == 2))
	assert_eq(processor.get_stats().cancelled - before.cancelled, 999)
	processor.queue_free()


func test_run_keyed_keys_are_compared_by_content() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var string_key := processor.run_keyed("a", func() -> int: return 1)
	var name_key := processor.run_keyed(&"a", func() -> int: return 2)
	var vector_key := processor.run_keyed(Vector2i(1, 2), func() -> int: return 3)
	var other_vector := processor.run_keyed(Vector2i(1, 3), func() -> int: return 4)
	var int_key := processor.run_keyed(7, func() -> int: return 5)
	var object_key := processor.run_keyed(self, func() -> int: return 6)
	assert_eq(string_key.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "\"a\" and &\"a\" are one key")
	assert_eq(processor.get_stats().keyed_tasks, 5)
	gate.post()
	assert_eq(await TaskHandle.when_all([name_key, vector_key, other_vector, int_key, object_key]).wait(), [2, 3, 4, 5, 6])
	assert_eq(processor.get_stats().keyed_tasks, 0)
	processor.queue_free()


func test_run_keyed_from_4_threads_on_one_key_completes_exactly_one() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var ran := AtomicCounter.new()
	var handles: Array = run_threads(4, func(t: int) -> Array:
		var mine := []
		for i in 250:
			mine.append(processor.run_keyed(Vector3i(1, 2, 3), func() -> int:
				ran.increment()
				return t))
		return mine)
	var all := []
	for mine: Array in handles:
		all.append_array(mine)
	assert_eq(processor.get_stats().keyed_tasks, 1)
	gate.post()
	assert_true(await frames_until(func() -> bool: return all.all(func(h: TaskHandle) -> bool: return h.is_done())))
	var completed := all.filter(func(h: TaskHandle) -> bool: return h.get_status() == AsyncTaskProcessor.STATUS_COMPLETED)
	assert_eq(completed.size(), 1, "exactly one of the 1000 completed")
	assert_eq(ran.get_count(), 1)
	assert_eq(processor.get_stats().keyed_tasks, 0)
	processor.queue_free()


func test_run_keyed_with_a_bad_key_is_refused() -> void:
	var processor := new_processor(1)
	var freed := Node.new()
	freed.free()
	for key in [null, [1], {"a": 1}, NAN, freed, PackedByteArray([1])]:
		expect_error("AsyncTaskProcessor.run_keyed: the key is")
		var handle := processor.run_keyed(key, func() -> int: return 1)
		assert_eq(handle.id, -1)
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
		assert_true("cannot be a key" in handle.get_error(), handle.get_error())
		assert_eq(await handle.wait(), null)
	assert_eq(processor.get_stats().keyed_tasks, 0)
	processor.queue_free()


func test_a_duplicate_of_a_bound_node_is_not_bound_until_it_binds_its_own() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var original := Node.new()
	var queued := processor.run(func() -> int: return 1).bind_to(original)
	var pending := TaskHandle.create_pending().bind_to(original)
	var copy := original.duplicate()  # Copies the metadata where the binding lives.
	assert_eq(processor.cancel_owner(copy), 0, "the original's tasks are not the copy's")
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	var copys := TaskHandle.create_pending().bind_to(copy)  # The copy gets a list of its own.
	original.free()
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "the original's binding held")
	assert_eq(pending.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(copys.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	copy.free()
	assert_eq(copys.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	gate.post()
	processor.queue_free()
