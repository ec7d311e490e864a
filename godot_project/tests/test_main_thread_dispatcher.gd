extends "res://tests/support/processor_test_case.gd"
## MainThreadDispatcher: any thread to the main thread, within a frame budget.

var _noops := 0


## Counts each property set and call it receives, and takes a moment to be destroyed (its
## PREDELETE notification), so that the main thread's lookups meet it while another thread
## destroys it: its reference count already reached 0, but it is still registered.
class Target extends RefCounted:
	var hits: AtomicCounter
	var value := 0:
		set(new_value):
			value = new_value
			hits.increment()

	func _init(counter: AtomicCounter) -> void:
		hits = counter

	func hit() -> void:
		hits.increment()

	func _notification(what: int) -> void:
		if what == NOTIFICATION_PREDELETE:
			OS.delay_usec(20)


func _noop() -> void:
	_noops += 1


func _restore_defaults() -> void:
	MainThreadDispatcher.set_frame_budget_usec(2000)
	MainThreadDispatcher.set_max_per_frame(0)
	MainThreadDispatcher.set_capacity(0)
	MainThreadDispatcher.set_overflow_policy(MainThreadDispatcher.OVERFLOW_REJECT)


func _drain_all() -> void:
	while MainThreadDispatcher.pending_count() > 0:
		MainThreadDispatcher.process_queue()


func test_work_from_threads_runs_on_the_main_thread_in_order() -> void:
	var lock := Mutex.new()
	var seen := []
	run_threads(4, func(t: int) -> void:
		for n in 100:
			assert_true(MainThreadDispatcher.dispatch(func() -> void:
				lock.lock()
				seen.append([t, n, OS.get_thread_caller_id()])
				lock.unlock())))
	assert_true(await frames_until(func() -> bool: return seen.size() == 400), "drained by itself, every frame")
	var next := [0, 0, 0, 0]
	for entry: Array in seen:
		assert_eq(entry[1], next[entry[0]], "first in, first out per thread")
		next[entry[0]] += 1
		assert_eq(entry[2], OS.get_main_thread_id())
	assert_true(get_tree().root.get_node_or_null("ThreadKitMainThreadDispatcher") != null, "installed with -s too")


func test_a_drain_stops_at_the_budget_and_at_its_start_length() -> void:
	MainThreadDispatcher.set_frame_budget_usec(5000)
	var ran := [0]
	for i in 50:
		MainThreadDispatcher.dispatch(func() -> void:
			OS.delay_msec(1)
			ran[0] += 1)
	var before: int = MainThreadDispatcher.get_stats().drains_over_budget
	var processed := MainThreadDispatcher.process_queue()
	assert_true(processed <= 6, "a 5 ms budget runs at most 5 + 1 items of 1 ms: ran %d" % processed)
	assert_eq(ran[0], processed)
	assert_eq(MainThreadDispatcher.get_stats().drains_over_budget, before + 1)
	_restore_defaults()
	MainThreadDispatcher.set_frame_budget_usec(0)
	var order := []
	MainThreadDispatcher.dispatch(func() -> void:
		order.append("first")
		MainThreadDispatcher.dispatch(func() -> void: order.append("queued during the drain")))
	_drain_all()  # The 1 ms items first.
	assert_eq(order, ["first", "queued during the drain"])
	MainThreadDispatcher.dispatch(func() -> void:
		order.append("a")
		MainThreadDispatcher.dispatch(func() -> void: order.append("b")))
	MainThreadDispatcher.process_queue()
	assert_eq(order.slice(2), ["a"], "work queued during a drain waits for the next one")
	MainThreadDispatcher.process_queue()
	assert_eq(order.slice(2), ["a", "b"])
	MainThreadDispatcher.set_max_per_frame(3)
	for i in 10:
		MainThreadDispatcher.dispatch(_noop)
	assert_eq(MainThreadDispatcher.process_queue(), 3)
	_restore_defaults()
	_drain_all()


func test_call_blocking_returns_values_inline_and_from_threads() -> void:
	assert_eq(MainThreadDispatcher.call_blocking(func() -> int: return OS.get_thread_caller_id()), OS.get_main_thread_id(), "inline on the main thread")
	var thread := Thread.new()
	thread.start(func() -> Array:
		return [MainThreadDispatcher.call_blocking(func() -> Array: return [OS.get_thread_caller_id(), {"k": 1}]),
				OS.get_thread_caller_id()])
	var got: Array = []
	while thread.is_alive():
		MainThreadDispatcher.process_queue()
		await get_tree().process_frame
	got = thread.wait_to_finish()
	assert_eq(got[0], [OS.get_main_thread_id(), {"k": 1}])
	assert_ne(got[1], OS.get_main_thread_id())


func test_call_blocking_times_out_while_the_main_thread_is_busy_and_never_runs_later() -> void:
	var ran := [false]
	expect_error("MainThreadDispatcher.call_blocking: the main thread did not get to the call within 30 ms")
	var thread := Thread.new()
	thread.start(func() -> Variant: return MainThreadDispatcher.call_blocking(func() -> bool:
		ran[0] = true
		return true, 30))
	assert_eq(thread.wait_to_finish(), null, "the main thread was busy waiting for the thread")
	_drain_all()
	await get_tree().process_frame
	assert_false(ran[0], "a call that timed out does not run later")


func test_bounded_queue_policies() -> void:
	_drain_all()
	MainThreadDispatcher.set_capacity(3)
	var ran := []
	expect_error("MainThreadDispatcher.dispatch: the dispatch queue is full (capacity 3)")
	var accepted := range(5).map(func(i: int) -> bool: return MainThreadDispatcher.dispatch(func() -> void: ran.append(i)))
	assert_eq(accepted, [true, true, true, false, false])
	_drain_all()
	assert_eq(ran, [0, 1, 2])
	ran.clear()
	MainThreadDispatcher.set_overflow_policy(MainThreadDispatcher.OVERFLOW_DROP_OLDEST)
	var dropped_before: int = MainThreadDispatcher.get_stats().dropped
	for i in 5:
		assert_true(MainThreadDispatcher.dispatch(func() -> void: ran.append(i)))
	_drain_all()
	assert_eq(ran, [2, 3, 4], "the newest stay, in order")
	assert_eq(MainThreadDispatcher.get_stats().dropped, dropped_before + 2)
	ran.clear()
	MainThreadDispatcher.set_overflow_policy(MainThreadDispatcher.OVERFLOW_BLOCK)
	var thread := Thread.new()
	thread.start(func() -> Array:
		return range(6).map(func(i: int) -> bool: return MainThreadDispatcher.dispatch(func() -> void: ran.append(i))))
	while thread.is_alive() or MainThreadDispatcher.pending_count() > 0:
		MainThreadDispatcher.process_queue()
		OS.delay_usec(200)
	assert_eq(thread.wait_to_finish(), [true, true, true, true, true, true], "blocked until a drain made room")
	assert_eq(ran, [0, 1, 2, 3, 4, 5])
	_restore_defaults()


func test_helpers_act_on_the_main_thread_and_skip_freed_objects() -> void:
	var parent := Node2D.new()
	add_child(parent)
	var child := Node2D.new()
	child.position = Vector2(3, 4)
	var doomed := Node.new()
	var orphan := Node.new()
	var dropped_before: int = MainThreadDispatcher.get_stats().dropped
	var thread := Thread.new()
	thread.start(func() -> void:
		MainThreadDispatcher.safe_print("hello from a thread")
		MainThreadDispatcher.safe_add_child(parent, child)
		MainThreadDispatcher.safe_set(parent, &"name", "Parent")
		MainThreadDispatcher.safe_call(parent, &"set_meta", ["answer", 42])
		MainThreadDispatcher.safe_add_child(doomed, orphan)
		MainThreadDispatcher.safe_set(doomed, &"name", "x")
		MainThreadDispatcher.safe_call(doomed, &"get_name")
		MainThreadDispatcher.safe_queue_free(doomed))
	thread.wait_to_finish()
	doomed.free()
	_drain_all()
	assert_eq(child.get_parent(), parent)
	assert_eq(str(parent.name), "Parent")
	assert_eq(parent.get_meta("answer"), 42)
	assert_eq(MainThreadDispatcher.get_stats().dropped, dropped_before + 4, "four calls on a freed object skipped")
	await get_tree().process_frame
	assert_false(is_instance_valid(orphan), "a child whose parent was freed is freed, not leaked")
	var reader := Thread.new()
	reader.start(func() -> Vector2: return MainThreadDispatcher.safe_get_node_position(child))
	while reader.is_alive():
		MainThreadDispatcher.process_queue()
		OS.delay_usec(200)
	assert_eq(reader.wait_to_finish(), Vector2(3, 4))
	MainThreadDispatcher.safe_queue_free(parent)
	_drain_all()
	await get_tree().process_frame
	assert_false(is_instance_valid(parent))


func test_bad_input_is_refused_with_clear_errors() -> void:
	expect_error("MainThreadDispatcher.dispatch: the Callable is invalid")
	assert_false(MainThreadDispatcher.dispatch(Callable()))
	expect_error("MainThreadDispatcher.call_blocking: the Callable is invalid")
	assert_eq(MainThreadDispatcher.call_blocking(Callable()), null)
	expect_error("MainThreadDispatcher.set_capacity: -1 is negative")
	MainThreadDispatcher.set_capacity(-1)
	expect_error("MainThreadDispatcher.set_overflow_policy: 7 is not")
	MainThreadDispatcher.set_overflow_policy(7)
	expect_error("MainThreadDispatcher.process_queue: called from")
	assert_eq(run_threads(1, func(_i: int) -> int: return MainThreadDispatcher.process_queue()), [0])
	assert_eq(MainThreadDispatcher.get_stats().capacity, 0, "a refused setting changes nothing")


func test_null_and_wrong_objects_are_refused_and_queue_nothing() -> void:
	_drain_all()
	var node := Node2D.new()
	var resource := Resource.new()
	var plain := Node.new()
	var stats := MainThreadDispatcher.get_stats()
	for bad: Array in [[null, "is null"], [resource, "is a Resource, not a Node"],
			[7, "is of type INT, not an object"]]:
		expect_error("MainThreadDispatcher.safe_add_child: the parent %s, so nothing was queued; pass a live Node." % bad[1])
		MainThreadDispatcher.safe_add_child(bad[0], node)
		expect_error("MainThreadDispatcher.safe_add_child: the child %s, so nothing was queued; pass a live Node." % bad[1])
		MainThreadDispatcher.safe_add_child(node, bad[0])
		expect_error("MainThreadDispatcher.safe_queue_free: the node %s, so nothing was queued; pass a live Node." % bad[1])
		MainThreadDispatcher.safe_queue_free(bad[0])
	for bad: Array in [[null, "is null"], [7, "is of type INT, not an object"]]:
		expect_error("MainThreadDispatcher.safe_set: the object %s, so nothing was queued; pass a live Object." % bad[1])
		MainThreadDispatcher.safe_set(bad[0], &"name", "x")
		expect_error("MainThreadDispatcher.safe_call: the object %s, so nothing was queued; pass a live Object." % bad[1])
		MainThreadDispatcher.safe_call(bad[0], &"get_name")
	expect_error("MainThreadDispatcher.dispatch: the owner is of type INT, not an object, so nothing was queued; pass a live Object.")
	assert_false(MainThreadDispatcher.dispatch(_noop, 7))
	for bad: Array in [[null, "is null"], [resource, "is a Resource, not a Node2D"],
			[plain, "is a Node, not a Node2D"]]:
		expect_error("MainThreadDispatcher.safe_get_node_position: the node %s, so the position is Vector2.ZERO; pass a live Node2D." % bad[1])
		assert_eq(MainThreadDispatcher.safe_get_node_position(bad[0]), Vector2.ZERO)
	expect_error("MainThreadDispatcher.safe_add_child: the parent is null")
	MainThreadDispatcher.safe_add_child(null, resource)
	assert_eq(MainThreadDispatcher.pending_count(), 0, "nothing queued")
	var after := MainThreadDispatcher.get_stats()
	assert_eq(after.dispatched, stats.dispatched, "nothing counted as queued")
	assert_eq(after.dropped, stats.dropped, "nor as dropped: each was a mistake, reported")
	assert_eq(node.get_child_count(), 0)
	node.free()
	plain.free()


func test_objects_already_freed_are_dropped_and_counted_without_an_error() -> void:
	_drain_all()
	var node := Node2D.new()
	var freed := Node2D.new()
	freed.free()
	var before: int = MainThreadDispatcher.get_stats().dropped
	MainThreadDispatcher.safe_add_child(freed, freed)
	MainThreadDispatcher.safe_add_child(node, freed)
	MainThreadDispatcher.safe_queue_free(freed)
	MainThreadDispatcher.safe_set(freed, &"name", "x")
	MainThreadDispatcher.safe_call(freed, &"get_name")
	assert_eq(MainThreadDispatcher.safe_get_node_position(freed), Vector2.ZERO)
	assert_false(MainThreadDispatcher.dispatch(_noop, freed), "not queued")
	assert_eq(MainThreadDispatcher.pending_count(), 0, "nothing queued")
	assert_eq(MainThreadDispatcher.get_stats().dropped - before, 7, "each call counted once")
	# The usual case: a worker thread holding an object that the main thread freed. Dropped there
	# too, and safe_get_node_position returns at once instead of waiting for the main thread.
	var gone := Node2D.new()
	var holding := Semaphore.new()
	var freed_now := Semaphore.new()
	var thread := Thread.new()
	thread.start(func() -> Vector2:
		holding.post()  # The lambda holds `gone` from here on (captures are checked at the call).
		freed_now.wait()
		MainThreadDispatcher.safe_set(gone, &"position", Vector2.ONE)
		return MainThreadDispatcher.safe_get_node_position(gone))
	holding.wait()
	gone.free()
	freed_now.post()
	assert_eq(thread.wait_to_finish(), Vector2.ZERO)
	assert_eq(MainThreadDispatcher.pending_count(), 0, "nothing queued from the thread either")
	assert_eq(MainThreadDispatcher.get_stats().dropped - before, 9)
	assert_eq(node.get_child_count(), 0)
	node.free()


## A node with a script: a call that reaches it counts in [member hits].
class Counted extends Node2D:
	var hits: AtomicCounter
	var value := 0:
		set(new_value):
			value = new_value
			hits.increment()

	func hit() -> void:
		hits.increment()


func test_helpers_racing_the_main_thread_freeing_their_nodes_run_or_drop_silently() -> void:
	_drain_all()
	const NODES := 300
	const THREADS := 3
	var hits := AtomicCounter.new()
	var calls := AtomicCounter.new()
	var nodes := []
	for i in NODES:
		var node := Counted.new()
		node.hits = hits
		nodes.append(node)
	var before: int = MainThreadDispatcher.get_stats().dropped
	var stop := AtomicCounter.new()
	var threads: Array[Thread] = []
	for t in THREADS:
		var thread := Thread.new()
		thread.start(func() -> void:
			# Untyped: GDScript itself refuses to assign a freed object to a typed variable.
			while stop.get_count() == 0:
				for node in nodes:
					MainThreadDispatcher.safe_call(node, &"hit")
					MainThreadDispatcher.safe_set(node, &"value", 1)
					MainThreadDispatcher.dispatch(func() -> void: hits.increment(), node)
					calls.add(3))
		threads.append(thread)
	for node: Node in nodes:
		node.free()
		MainThreadDispatcher.process_queue()
		OS.delay_usec(50)
	stop.increment()
	for thread in threads:
		thread.wait_to_finish()
	_drain_all()
	var dropped: int = MainThreadDispatcher.get_stats().dropped - before
	assert_true(dropped > 0, "some calls met a freed node")
	assert_eq(hits.get_count() + dropped, calls.get_count(), "each call ran or was dropped")


## An object that is no RefCounted and no Node, so another thread may free it.
class Plain extends Object:
	var hits: AtomicCounter

	func hit() -> void:
		hits.increment()


func test_helpers_on_objects_a_worker_freed_before_the_drain_drop_silently() -> void:
	_drain_all()
	const OBJECTS := 200
	var hits := AtomicCounter.new()
	var before: int = MainThreadDispatcher.get_stats().dropped
	run_threads(2, func(_t: int) -> void:
		for i in OBJECTS:
			var plain := Plain.new()
			plain.hits = hits
			MainThreadDispatcher.safe_call(plain, &"hit")
			MainThreadDispatcher.safe_set(plain, &"hits", null)
			MainThreadDispatcher.dispatch(plain.hit)
			MainThreadDispatcher.dispatch(func() -> void: hits.increment(), plain)
			plain.free())
	_drain_all()
	assert_eq(hits.get_count(), 0)
	assert_eq(MainThreadDispatcher.get_stats().dropped - before, 2 * OBJECTS * 4, "every call dropped, none reported")


func test_a_worker_pushing_a_non_node_to_a_node_helper_gets_the_error_when_the_call_runs() -> void:
	_drain_all()
	var resource := Resource.new()
	var node := Node.new()
	run_threads(1, func(_i: int) -> void:
		MainThreadDispatcher.safe_add_child(node, resource)
		MainThreadDispatcher.safe_queue_free(resource))
	expect_error("MainThreadDispatcher.safe_add_child: the child is a Resource, not a Node, so the call was dropped; pass a live Node.")
	expect_error("MainThreadDispatcher.safe_queue_free: the node is a Resource, not a Node, so the call was dropped")
	_drain_all()
	assert_eq(node.get_child_count(), 0)
	node.free()


func test_safe_call_of_a_missing_method_names_it_shortly() -> void:
	_drain_all()
	var node := Node.new()
	var long_name := "x".repeat(100_000)
	MainThreadDispatcher.safe_call(node, StringName(long_name))
	expect_error("MainThreadDispatcher.safe_call: Node object #%d has no method \"xxxx" % node.get_instance_id())
	expect_error("(100000 characters); check the method name.")
	_drain_all()
	node.free()


func test_dispatch_tied_to_an_owner_freed_before_the_frame_is_dropped_silently() -> void:
	await get_tree().process_frame
	var label := Label.new()
	add_child(label)
	var before := MainThreadDispatcher.get_stats()
	run_threads(1, func(_i: int) -> void:
		assert_true(MainThreadDispatcher.dispatch(func() -> void: label.text = "too late", label))
		assert_true(MainThreadDispatcher.dispatch(label.set_text.bind("too late"))))
	label.free()
	for i in 3:
		await get_tree().process_frame
	var after := MainThreadDispatcher.get_stats()
	assert_eq(after.dispatched - before.dispatched, 2)
	assert_eq(after.dropped - before.dropped, 2, "both dropped, without an error")
	var kept := Label.new()
	add_child(kept)
	run_threads(1, func(_i: int) -> void:
		MainThreadDispatcher.dispatch(func() -> void: kept.text = "in time", kept))
	await get_tree().process_frame
	assert_eq(kept.text, "in time", "a live owner runs the call")
	kept.queue_free()


func test_call_blocking_on_a_freed_target_returns_null_with_one_error() -> void:
	_drain_all()
	var node := Node.new()
	var queued := Semaphore.new()
	var thread := Thread.new()
	thread.start(func() -> Variant:
		queued.post()
		return MainThreadDispatcher.call_blocking(node.get_name, -1))
	queued.wait()
	while MainThreadDispatcher.pending_count() == 0:
		OS.delay_usec(100)
	node.free()
	var dropped: int = MainThreadDispatcher.get_stats().dropped
	expect_error("MainThreadDispatcher.call_blocking: the call did not run: its object was freed")
	_drain_all()
	assert_eq(thread.wait_to_finish(), null, "released by the drain, with one error")
	assert_eq(MainThreadDispatcher.get_stats().dropped - dropped, 1)
	var freed := Node.new()
	var get_name := freed.get_name
	freed.free()
	expect_error("MainThreadDispatcher.call_blocking: the Callable is invalid")
	assert_eq(run_threads(1, func(_i: int) -> Variant:
		return MainThreadDispatcher.call_blocking(get_name, -1)), [null], "at once")


func test_a_task_calling_the_main_thread_while_it_waits_does_not_deadlock() -> void:
	var processor := new_processor(1)
	var id := processor.submit_task(func() -> int:
		return MainThreadDispatcher.call_blocking(func() -> int: return 5, 10000) * 2)
	assert_eq(processor.wait_for_task(id), 10, "the wait ran the dispatched call")
	processor.queue_free()


func test_a_million_items_hit_no_cap_and_are_spread_over_frames() -> void:
	_noops = 0
	var rejected_before: int = MainThreadDispatcher.get_stats().rejected
	var producers := []
	for t in 2:
		var thread := Thread.new()
		thread.start(func() -> void:
			for i in 500_000:
				MainThreadDispatcher.dispatch(_noop))
		producers.append(thread)
	var frames := 0
	var over_budget_before: int = MainThreadDispatcher.get_stats().drains_over_budget
	while _noops < 1_000_000:
		await get_tree().process_frame
		frames += 1
	for thread: Thread in producers:
		thread.wait_to_finish()
	assert_eq(_noops, 1_000_000)
	assert_eq(MainThreadDispatcher.get_stats().rejected, rejected_before)
	# How long each drain took is a figure for `cargo xtask bench`, not a pass/fail check here.
	assert_true(frames > 1, "spread over frames")
	assert_true(MainThreadDispatcher.get_stats().drains_over_budget > over_budget_before, "the budget cut drains short")


func test_ref_counted_objects_released_by_another_thread_are_run_or_dropped_never_a_panic() -> void:
	_drain_all()
	const ROUNDS := 10
	const PRODUCERS := 2
	const TARGETS := 100  # Per producer and round.
	var ran := AtomicCounter.new()
	var dropped_before: int = MainThreadDispatcher.get_stats().dropped
	for _round in ROUNDS:
		var lock := Mutex.new()
		var targets := []
		run_threads(PRODUCERS, func(_t: int) -> void:
			for i in TARGETS:
				var target := Target.new(ran)
				MainThreadDispatcher.safe_set(target, &"value", i)
				MainThreadDispatcher.safe_call(target, &"hit")
				lock.lock()
				targets.append(target)
				lock.unlock())
		# `targets` holds the last references. Another thread drops them newest first while the
		# main thread runs their work oldest first, so the two meet: work on a target already
		# gone, on one being destroyed right then, and on one still alive.
		var dropper := Thread.new()
		dropper.start(func() -> void:
			while not targets.is_empty():
				targets.pop_back())
		while dropper.is_alive():
			MainThreadDispatcher.process_queue()
		dropper.wait_to_finish()
		_drain_all()
	var dropped: int = MainThreadDispatcher.get_stats().dropped - dropped_before
	assert_eq(ran.get_count() + dropped, ROUNDS * PRODUCERS * TARGETS * 2, "each item ran or was dropped")
