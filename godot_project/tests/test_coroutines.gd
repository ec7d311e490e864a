extends "res://tests/support/processor_test_case.gd"
## A coroutine (a function that awaits) returns at its first await: given as a task, a group body
## or a Callable run under a lock, it is refused with an error, never "completed" with a
## GDScriptFunctionState, and the rest of it never runs (ThreadKit drops its state).

const REFUSED := "is a coroutine (it uses await)"


## The coroutines of these tests, and what they await. Not a Node: a worker may not connect to a
## Node's signal. Methods, not lambdas: Godot 4.6 never frees the local variables (captures
## included) of a coroutine that does not finish, so a refused lambda capturing a RefCounted
## would leak it; these keep what they use in members.
class Gate extends RefCounted:
	signal opened
	## How far the coroutines got: one step at their first await, one more after it.
	var reached := AtomicCounter.new()
	var lock := ReadWriteLock.new()

	func reach_then_await() -> int:
		reached.increment()
		await opened
		reached.increment()
		return 1

	func await_on_call_2(i: int) -> int:
		if i == 2:
			await opened
		return i

	func decrement_after_await(old: int) -> int:
		reached.increment()
		await opened
		reached.increment()
		return old - 1

	func write_lock_then_await() -> int:
		lock.write_lock()
		await opened
		lock.write_unlock()
		return 1


func test_a_coroutine_task_fails_and_never_resumes() -> void:
	var processor := new_processor(1)
	var gate := Gate.new()
	var handle := processor.run(gate.reach_then_await)
	expect_error("AsyncTaskProcessor: task %d failed: the task's function %s" % [handle.id, REFUSED])
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(REFUSED in handle.get_error() and "remove the await" in handle.get_error(), handle.get_error())
	gate.opened.emit()
	await get_tree().process_frame
	assert_eq(gate.reached.get_count(), 1, "the code after the await never ran")


func test_a_coroutine_group_body_fails_the_group() -> void:
	var processor := new_processor(2)
	var gate := Gate.new()
	var handle := processor.submit_group(gate.await_on_call_2, 4)
	expect_error("failed: the task's function " + REFUSED)
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(REFUSED in handle.get_error(), handle.get_error())


## An await that does not wait (its value is no signal) leaves a plain function: that is fine.
func test_an_await_that_does_not_wait_is_a_plain_result() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> int: return await _plain(20))
	assert_eq(await handle.finished, 21)


func _plain(value: int) -> int:
	return value + 1


func test_update_value_refuses_a_coroutine_and_keeps_the_value() -> void:
	var shared := SharedResource.new()
	shared.write_value("hp", 100)
	var gate := Gate.new()
	var returned = shared.update_value("hp", gate.decrement_after_await)
	expect_error("SharedResource.update_value: the Callable " + REFUSED)
	assert_eq(returned, null)
	assert_eq(shared.read_value("hp"), 100, "the old value stays")
	gate.opened.emit()
	assert_eq(gate.reached.get_count(), 1, "the code after the await never ran")
	assert_eq(shared.update_value("hp", func(old: int) -> int: return old - 1), 99, "it works on")


func test_with_read_and_with_write_refuse_a_coroutine_and_release_the_lock() -> void:
	var lock := ReadWriteLock.new()
	var gate := Gate.new()
	assert_eq(lock.with_write(gate.reach_then_await), null)
	assert_eq(lock.with_read(gate.reach_then_await), null)
	expect_error("ReadWriteLock.with_write: the Callable " + REFUSED)
	expect_error("ReadWriteLock.with_read: the Callable " + REFUSED)
	assert_false(lock.is_write_locked())
	assert_eq(lock.get_reader_count(), 0)
	var taken := run_threads(1, func(_i: int) -> bool:
		var ok := lock.try_write_lock(2000)
		if ok:
			lock.write_unlock()
		return ok)
	assert_eq(taken, [true], "another thread can write at once")
	gate.opened.emit()
	assert_eq(gate.reached.get_count(), 2, "each stopped at its await")


## A coroutine that takes the lock itself inside a task: the task fails and the lock is released
## (see test_held_locks for locks outliving their task).
func test_a_coroutine_task_holding_a_lock_releases_it() -> void:
	var processor := new_processor(1)
	var gate := Gate.new()
	var handle := processor.run(gate.write_lock_then_await)
	expect_error(REFUSED)
	expect_error("ReadWriteLock.write_lock: task %d ended still holding 1 write lock(s)" % handle.id)
	await handle.finished
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(gate.lock.try_write_lock(2000), "the lock is free")
	gate.lock.write_unlock()
