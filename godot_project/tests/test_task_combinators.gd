extends "res://tests/support/processor_test_case.gd"
## TaskHandle.wait(), create_pending() with complete()/fail()/cancel(), when_all() and when_any().


## Awaits handle.wait() and returns [result, frames that passed meanwhile].
func _await_counting_frames(handle: TaskHandle) -> Array:
	var before := Engine.get_process_frames()
	var result = await handle.wait()
	return [result, Engine.get_process_frames() - before]


func test_wait_works_before_and_after_the_end() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var handle := processor.run(func() -> int: return 42)
	assert_eq(typeof(handle.wait()), TYPE_SIGNAL, "before the end: the finished signal")
	gate.post()
	var first = await handle.wait()
	assert_eq(first, 42)
	assert_eq(OS.get_thread_caller_id(), OS.get_main_thread_id())
	for i in 3:
		await get_tree().process_frame  # `finished` was emitted long ago.
	var again := await _await_counting_frames(handle)
	assert_eq(again, [42, 0], "after the end: the result at once, no frame waited")
	var copy: Array = await processor.run(func() -> Array: return [1, 2]).wait()
	copy.append(3)
	assert_eq(copy, [1, 2, 3])
	processor.queue_free()


func test_wait_gives_null_for_failed_and_cancelled_tasks_and_never_hangs() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var cancelled := processor.run(func() -> int: return 1)
	cancelled.cancel()
	assert_eq(await cancelled.wait(), null)
	expect_error("AsyncTaskProcessor.run: the task Callable is invalid")
	var refused := processor.run(Callable())
	assert_eq(await refused.wait(), null)
	assert_eq((await _await_counting_frames(refused))[1], 0)
	gate.post()
	processor.queue_free()


func test_a_pending_handle_completed_on_the_main_thread_or_another_thread() -> void:
	var pending := TaskHandle.create_pending()
	assert_eq(pending.id, 0)
	assert_eq(pending.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	assert_eq(str(pending), "TaskHandle(id=0, pending)")
	assert_true(pending.complete({"a": [1]}))
	assert_false(pending.complete(2), "ended already")
	assert_false(pending.fail("late"))
	assert_false(pending.cancel())
	assert_eq(await _await_counting_frames(pending), [{"a": [1]}, 0])
	assert_eq(pending.get_progress(), 1.0)

	var from_thread := TaskHandle.create_pending()
	var emitted := []
	from_thread.finished.connect(func(result: Variant) -> void:
		emitted.append([result, OS.get_thread_caller_id()]))
	var thread := Thread.new()
	thread.start(func() -> bool:
		OS.delay_msec(20)
		return from_thread.complete([7]))
	var result = await from_thread.wait()
	assert_true(thread.wait_to_finish())
	assert_eq(result, [7])
	assert_eq(emitted, [[[7], OS.get_main_thread_id()]], "emitted once, on the main thread")

	var failing := TaskHandle.create_pending()
	assert_true(failing.fail("no network"))
	assert_eq(await failing.wait(), null)
	assert_eq(failing.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(failing.get_error(), "no network")


func test_complete_racing_from_4_threads_has_exactly_one_winner_and_one_emission() -> void:
	var rounds := 100
	var handles: Array[TaskHandle] = []
	var emissions := AtomicCounter.new()
	var wins := AtomicCounter.new()
	for r in rounds:
		var handle := TaskHandle.create_pending()
		handle.finished.connect(func(_result: Variant) -> void: emissions.increment())
		handles.append(handle)
	run_threads(4, func(t: int) -> void:
		for handle in handles:
			var won := false
			match t:
				0: won = handle.complete(t)
				1: won = handle.fail("thread 1")
				2: won = handle.cancel()
				_: won = handle.complete([t])
			if won:
				wins.increment())
	assert_eq(wins.get_count(), rounds, "exactly one winner per handle")
	assert_true(await frames_until(func() -> bool: return emissions.get_count() >= rounds))
	for i in 3:
		await get_tree().process_frame
	assert_eq(emissions.get_count(), rounds, "finished emitted exactly once per handle")
	for handle in handles:
		assert_true(handle.is_done())


func test_a_pending_handle_ended_by_its_last_holder_on_a_thread_still_finishes() -> void:
	for end in ["complete", "cancel"]:
		var box := [TaskHandle.create_pending()]
		var emitted := []
		box[0].finished.connect(func(result: Variant) -> void: emitted.append(result))
		var thread := Thread.new()
		thread.start(func() -> bool:
			var handle: TaskHandle = box.pop_back()
			return handle.complete(1) if end == "complete" else handle.cancel())
		assert_true(thread.wait_to_finish(), end)
		# The thread dropped the last reference right after ending it.
		assert_true(await frames_until(func() -> bool: return emitted.size() == 1), end)
		assert_eq(emitted, [1 if end == "complete" else null], end)


## A coroutine that switches to a worker of [param processor] and awaits [param handle] there.
class AwaitOnWorker extends RefCounted:
	var seen := []

	func run(processor: AsyncTaskProcessor, handle: TaskHandle) -> void:
		await processor.switch_to_worker()
		var result = await handle.wait()
		seen.append([result, OS.get_thread_caller_id() == OS.get_main_thread_id()])


func test_wait_off_the_main_thread_before_the_end_is_an_error_not_a_hop_to_the_main_thread() -> void:
	var pending := TaskHandle.create_pending()
	var on_thread := []
	var thread := Thread.new()
	thread.start(func() -> void:
		var result = await pending.wait()
		on_thread.append([result, OS.get_thread_caller_id() == OS.get_main_thread_id()]))
	thread.wait_to_finish()
	expect_error("TaskHandle.wait: called off the main thread before the task ended")
	assert_eq(on_thread, [[null, false]], "null at once, still on the thread")

	var processor := new_processor(1)
	var coroutine := AwaitOnWorker.new()
	coroutine.run(processor, pending)
	assert_true(await frames_until(func() -> bool: return coroutine.seen.size() == 1))
	assert_eq(coroutine.seen, [[null, false]], "a switched coroutine stays on its worker")
	assert_true(pending.complete(5))
	var after_the_end := AwaitOnWorker.new()
	after_the_end.run(processor, pending)
	assert_true(await frames_until(func() -> bool: return after_the_end.seen.size() == 1))
	assert_eq(after_the_end.seen, [[5, false]], "after the end: the result at once, on the worker")
	processor.queue_free()


func test_complete_and_fail_are_for_pending_handles_only() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> int: return 1)
	expect_error("TaskHandle.complete: this handle is not one from TaskHandle.create_pending()")
	assert_false(handle.complete(5))
	expect_error("TaskHandle.fail: this handle is not one from TaskHandle.create_pending()")
	assert_false(handle.fail("x"))
	assert_eq(await handle.wait(), 1)
	processor.queue_free()


func test_when_all_over_100_tasks_of_2_processors_and_a_pending_one_keeps_the_order() -> void:
	var processors := [new_processor(2), new_processor(2)]
	var handles := []
	for i in 100:
		handles.append(processors[i % 2].run(func() -> int:
			OS.delay_usec(100 * (i % 7))
			return i * i))
	var pending := TaskHandle.create_pending()
	handles.append(pending)
	var all := TaskHandle.when_all(handles)
	assert_eq(all.id, 0)
	var thread := Thread.new()
	thread.start(func() -> void: pending.complete("last"))
	var results = await all.wait()
	thread.wait_to_finish()
	var expected := []
	for i in 100:
		expected.append(i * i)
	expected.append("last")
	assert_eq(results, expected)
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	for processor in processors:
		processor.queue_free()


func test_when_all_fails_naming_the_handle_and_cancels_the_rest() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	var queued := processor.run(func() -> int: return 1)
	var pending := TaskHandle.create_pending()
	var failing := TaskHandle.create_pending()
	var all := TaskHandle.when_all([queued, pending, failing])
	assert_true(failing.fail("no route"))
	assert_eq(await all.wait(), null)
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(all.get_error(), "handle 2 of 3 failed: no route")
	assert_eq(pending.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "the rest is cancelled")
	assert_eq(queued.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_false(pending.complete(1))
	gate.post()
	assert_eq(await queued.wait(), null)
	processor.queue_free()


func test_when_all_is_cancelled_with_a_cancelled_handle_and_cancelling_it_cancels_its_handles() -> void:
	var a := TaskHandle.create_pending()
	var b := TaskHandle.create_pending()
	var all := TaskHandle.when_all([a, b])
	assert_true(b.cancel())
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(a.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(await all.wait(), null)

	var c := TaskHandle.create_pending()
	var d := TaskHandle.create_pending()
	var both := TaskHandle.when_all([c, d])
	assert_true(c.complete(1))
	assert_true(both.cancel())
	assert_false(both.cancel())
	assert_eq(c.get_status(), AsyncTaskProcessor.STATUS_COMPLETED, "what ended stays as it ended")
	assert_eq(d.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_when_all_of_nothing_and_of_bad_elements() -> void:
	var none := TaskHandle.when_all([])
	assert_eq(await none.wait(), [])
	expect_error("TaskHandle.when_all: element 1 of the Array is int 5, not a TaskHandle")
	var bad := TaskHandle.when_all([TaskHandle.create_pending(), 5])
	assert_eq(bad.id, -1)
	assert_eq(bad.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(await bad.wait(), null)
	expect_error("TaskHandle.when_any: element 0 of the Array is null, not a TaskHandle")
	assert_eq(TaskHandle.when_any([null]).get_status(), AsyncTaskProcessor.STATUS_FAILED)
	expect_error("TaskHandle.when_any: the Array is empty")
	var empty := TaskHandle.when_any([])
	assert_eq(empty.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	var emitted := []
	empty.finished.connect(func(result: Variant) -> void: emitted.append(result))
	assert_true(await frames_until(func() -> bool: return emitted == [null]), "a refused handle still finishes")


func test_when_any_takes_the_first_and_a_never_ending_handle_does_not_block_it() -> void:
	var processor := new_processor(2)
	var never := TaskHandle.create_pending()
	var quick := processor.run(func() -> String: return "quick")
	var any := TaskHandle.when_any([never, quick])
	assert_eq(await any.wait(), [1, "quick"])
	assert_eq(never.get_status(), AsyncTaskProcessor.STATUS_PENDING, "the others are left as they are")

	var failing := TaskHandle.create_pending()
	var first_failed := TaskHandle.when_any([never, failing])
	failing.fail("lost")
	assert_eq(await first_failed.wait(), null)
	assert_eq(first_failed.get_error(), "handle 1 of 2 failed: lost")

	var cancelling := TaskHandle.create_pending()
	var first_cancelled := TaskHandle.when_any([cancelling, never])
	cancelling.cancel()
	assert_eq(await first_cancelled.wait(), null)
	assert_eq(first_cancelled.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_true(never.cancel())
	processor.queue_free()


func test_nested_when_all_and_when_any() -> void:
	var processor := new_processor(2)
	var a := TaskHandle.create_pending()
	var b := processor.run(func() -> int: return 2)
	var c := TaskHandle.create_pending()
	var nested := TaskHandle.when_all([TaskHandle.when_any([a, b]), TaskHandle.when_all([c])])
	c.complete("c")
	var result = await nested.wait()
	assert_eq(result, [[1, 2], ["c"]])
	assert_true(a.cancel())
	processor.queue_free()


func test_a_processor_freed_while_when_all_waits_on_its_tasks_releases_the_await() -> void:
	var processor := new_processor(1)
	var handles := []
	for i in 20:
		handles.append(processor.run(func() -> int:
			while not AsyncTaskProcessor.is_cancelled():
				OS.delay_usec(200)
			return i))
	var all := TaskHandle.when_all(handles)
	var emitted := []
	all.finished.connect(func(result: Variant) -> void: emitted.append(result))
	assert_true(await frames_until(func() -> bool: return handles[0].get_status() == AsyncTaskProcessor.STATUS_RUNNING))
	processor.free()
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_CANCELLED, "ended by the free")
	var result = await all.wait()
	assert_eq(result, null)
	assert_true(await frames_until(func() -> bool: return emitted == [null]))
	for handle: TaskHandle in handles:
		assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)


func test_a_combined_handle_nobody_holds_still_finishes_for_its_awaiter() -> void:
	var pending := TaskHandle.create_pending()
	var thread := Thread.new()
	thread.start(func() -> void:
		OS.delay_msec(30)
		pending.complete(3))
	# The combined handle is a temporary: the parts keep it alive until it has finished.
	var result = await TaskHandle.when_all([pending]).wait()
	thread.wait_to_finish()
	assert_eq(result, [3])


func test_handles_that_can_never_end_cancel_their_combination_and_leak_nothing() -> void:
	var a := TaskHandle.create_pending()
	var b := TaskHandle.create_pending()
	var refs := [weakref(a), weakref(b)]
	var all := TaskHandle.when_all([a, b])
	refs.append(weakref(all))
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_PENDING)
	a = null
	b = null
	# Nobody can complete the two pending handles any more: freed, they cancel the combination.
	assert_eq(all.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_eq(await all.wait(), null)
	all = null
	for i in 3:
		await get_tree().process_frame
	for ref: WeakRef in refs:
		assert_eq(ref.get_ref(), null, "every handle freed")


func test_pending_handles_finish_while_the_game_is_paused_without_any_processor() -> void:
	var pending := TaskHandle.create_pending()
	var emitted := []
	pending.finished.connect(func(result: Variant) -> void: emitted.append(result))
	get_tree().paused = true
	var thread := Thread.new()
	thread.start(func() -> void: pending.complete("paused"))
	thread.wait_to_finish()
	var finished := await frames_until(func() -> bool: return emitted == ["paused"])
	get_tree().paused = false
	assert_true(finished, "the dispatcher drains during a pause")


func test_a_finished_handler_may_use_its_own_handle_and_combine_it_again() -> void:
	var pending := TaskHandle.create_pending()
	var ref: WeakRef = weakref(pending)  # Not the handle: a lambda holding it would keep it alive.
	var seen := []
	pending.finished.connect(func(result: Variant) -> void:
		var handle: TaskHandle = ref.get_ref()
		seen.append([result, handle.cancel(), handle.complete(2), handle.get_result()])
		seen.append(TaskHandle.when_all([handle, handle]).get_result()))
	assert_true(pending.complete(1))
	assert_true(await frames_until(func() -> bool: return seen.size() == 2))
	assert_eq(seen, [[1, false, false, 1], [1, 1]], "re-entrant calls see the end; a combination of ended handles ends at once")


## A refused combination is a temporary nobody holds while its `finished` is on its way: it is
## kept alive until emitted, so the await resumes.
func test_a_refused_combination_awaited_as_a_temporary_still_emits_finished() -> void:
	expect_error("TaskHandle.when_all: element 0 of the Array is int 5, not a TaskHandle")
	assert_eq(await TaskHandle.when_all([5]).finished, null)
	expect_error("TaskHandle.when_any: the Array is empty")
	assert_eq(await TaskHandle.when_any([]).finished, null)
