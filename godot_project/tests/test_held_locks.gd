extends "res://tests/support/processor_test_case.gd"
## A ReadWriteLock hold that outlives the code that took it is released with an error, so other
## threads never wait for it forever: a task's, when the task ends; the main thread's, when the
## next frame starts (held across an await, or never unlocked).

## Emitted only at the end of a test, to let a suspended coroutine finish (a coroutine Godot never
## resumes is leaked at exit).
signal late

const MAIN_HELD := "the main thread still held"


## Whether another thread can take the write lock within 2 s (the test's "it is free").
func _free_for_others(lock: ReadWriteLock) -> bool:
	return run_threads(1, func(_i: int) -> bool:
		var ok := lock.try_write_lock(2000)
		if ok:
			lock.write_unlock()
		return ok) == [true]


func test_a_task_that_forgets_to_unlock_has_its_locks_released() -> void:
	var processor := new_processor(1)
	var lock := ReadWriteLock.new()
	var handle := processor.run(func() -> int:
		lock.write_lock()
		lock.write_lock()
		lock.read_lock()  # A read under its own write lock.
		return 5)
	expect_error("ReadWriteLock.write_lock: task %d ended still holding 2 write lock(s)" % handle.id)
	expect_error("ReadWriteLock.read_lock: task %d ended still holding 1 read lock(s)" % handle.id)
	assert_eq(await handle.finished, 5, "the task's result stands")
	assert_false(lock.is_write_locked())
	assert_true(_free_for_others(lock))


func test_a_task_that_fails_holding_a_read_lock_has_it_released() -> void:
	var processor := new_processor(1)
	var lock := ReadWriteLock.new()
	var handle := processor.run(func() -> void:
		lock.read_lock()
		var nothing: Variant = null
		nothing.explode()
		lock.read_unlock())  # Godot leaves the function at the error: this never runs.
	expect_error("Nonexistent function 'explode'")
	expect_error("failed: SCRIPT ERROR")
	expect_error("ReadWriteLock.read_lock: task %d ended still holding 1 read lock(s)" % handle.id)
	await handle.finished
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(lock.get_reader_count(), 0)
	assert_true(_free_for_others(lock))


func test_a_group_call_that_forgets_to_unlock_is_named() -> void:
	var processor := new_processor(2)
	var lock := ReadWriteLock.new()
	var handle := processor.submit_group(func(i: int) -> int:
		if i == 1:
			lock.try_read_lock(1000)
		return i, 3)
	expect_error("ReadWriteLock.try_read_lock: task %d (its call 1) ended still holding 1 read lock(s)" % handle.id)
	assert_eq(await handle.finished, [0, 1, 2])
	assert_eq(lock.get_reader_count(), 0)


## Balanced locking in tasks, and locks held elsewhere, stay untouched and quiet.
func test_balanced_and_foreign_holds_stay_quiet() -> void:
	var processor := new_processor(2)
	var lock := ReadWriteLock.new()
	var handles: Array[TaskHandle] = []
	for i in 50:
		handles.append(processor.run(func() -> int:
			lock.read_lock()
			lock.read_lock()
			lock.read_unlock()
			lock.read_unlock()
			lock.with_write(func() -> void: pass)
			return i))
	assert_true(await frames_until(func() -> bool: return handles.all(func(h: TaskHandle) -> bool: return h.is_done())))
	var thread_holds := ReadWriteLock.new()
	var thread := Thread.new()
	thread.start(func() -> void: thread_holds.read_lock())  # A Thread of its own keeps its hold.
	thread.wait_to_finish()
	await get_tree().process_frame
	assert_eq(thread_holds.get_reader_count(), 1)
	assert_eq(lock.get_reader_count(), 0)
	assert_false(lock.is_write_locked())


## A task run inline by the task that waits for it releases only what it took itself: the
## waiting task's hold on the same lock stays.
func test_an_inline_task_releases_only_its_own_holds() -> void:
	var processor := new_processor(1)
	var lock := ReadWriteLock.new()
	var inner_id := []
	var handle := processor.run(func() -> Array:
		lock.read_lock()
		var inner := processor.submit_task(func() -> bool: return lock.read_lock())  # Forgets.
		inner_id.append(inner)
		processor.wait_for_task(inner)  # One worker, busy with this task: runs it here.
		var readers_after := lock.get_reader_count()
		var unlocked := lock.read_unlock()
		return [readers_after, unlocked, lock.get_reader_count()])
	expect_error("ReadWriteLock.read_lock: task ")
	assert_eq(await handle.finished, [1, true, 0], "[its hold kept, unlocked, none left]")
	assert_eq(inner_id.size(), 1)


func test_a_lock_the_main_thread_holds_into_the_next_frame_is_released() -> void:
	var lock := ReadWriteLock.new()
	assert_true(lock.write_lock())
	await get_tree().process_frame
	expect_error("ReadWriteLock.write_lock: %s 1 write lock(s) when the next frame started" % MAIN_HELD)
	assert_false(lock.is_write_locked())
	assert_true(_free_for_others(lock))
	assert_false(lock.write_unlock(), "released already")
	expect_error("ReadWriteLock.write_unlock: no write lock is held")


func _hold_then_await(lock: ReadWriteLock) -> void:
	lock.read_lock()
	await late
	lock.read_unlock()


func test_a_coroutine_suspended_holding_a_lock_does_not_keep_it() -> void:
	var lock := ReadWriteLock.new()
	_hold_then_await(lock)  # Suspended at its await, holding a read lock.
	assert_eq(lock.get_reader_count(), 1)
	await get_tree().process_frame
	expect_error("ReadWriteLock.read_lock: %s 1 read lock(s)" % MAIN_HELD)
	assert_eq(lock.get_reader_count(), 0)
	assert_true(_free_for_others(lock))
	late.emit()  # Resumed at last: its unlock finds nothing to release.
	expect_error("ReadWriteLock.read_unlock: no read lock is held")


func test_main_thread_locks_within_a_frame_stay_quiet() -> void:
	var lock := ReadWriteLock.new()
	for i in 3:
		lock.write_lock()
		lock.read_lock()
		lock.read_unlock()
		lock.write_unlock()
		assert_true(lock.try_read_lock())
		lock.read_unlock()
		await get_tree().process_frame
	assert_false(lock.is_write_locked())


func test_a_task_that_forgets_an_upgradable_or_upgraded_lock_has_it_released() -> void:
	var processor := new_processor(1)
	var kept := ReadWriteLock.new()
	var upgraded := ReadWriteLock.new()
	var downgraded := ReadWriteLock.new()
	var handle := processor.run(func() -> int:
		kept.upgradable_read_lock()
		upgraded.upgradable_read_lock()
		upgraded.upgrade()
		downgraded.write_lock()
		downgraded.downgrade()
		return 1)
	expect_error("ReadWriteLock.upgradable_read_lock: task %d ended still holding 1 upgradable_read lock(s)" % handle.id)
	expect_error("ReadWriteLock.upgrade: task %d ended still holding 1 write lock(s)" % handle.id)
	expect_error("ReadWriteLock.downgrade: task %d ended still holding 1 read lock(s)" % handle.id)
	assert_eq(await handle.finished, 1)
	for lock: ReadWriteLock in [kept, upgraded, downgraded]:
		assert_eq([lock.get_reader_count(), lock.is_write_locked(), lock.is_upgradable_locked()], [0, false, false])
		assert_true(_free_for_others(lock))


func test_an_upgradable_lock_the_main_thread_holds_into_the_next_frame_is_released() -> void:
	var lock := ReadWriteLock.new()
	assert_true(lock.upgradable_read_lock())
	await get_tree().process_frame
	expect_error("ReadWriteLock.upgradable_read_lock: %s 1 upgradable_read lock(s) when the next frame started" % MAIN_HELD)
	assert_false(lock.is_upgradable_locked())
	assert_true(_free_for_others(lock))
