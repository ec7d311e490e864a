extends "res://tests/support/test_case.gd"
## ReadWriteLock: re-entrancy, readers in parallel, writers alone, and every misuse reported.


func test_with_read_and_with_write_return_what_the_callable_returns() -> void:
	var lock := ReadWriteLock.new()
	assert_eq(lock.with_read(func(): return [lock.get_reader_count(), lock.is_write_locked()]), [1, false])
	assert_eq(lock.with_write(func(): return [lock.get_reader_count(), lock.is_write_locked()]), [0, true])
	assert_eq([lock.get_reader_count(), lock.is_write_locked()], [0, false], "both released")
	assert_eq(str(lock), "ReadWriteLock(readers=0, writer=false)")


func test_reads_and_writes_are_reentrant() -> void:
	var lock := ReadWriteLock.new()
	assert_true(lock.read_lock() and lock.read_lock())
	assert_eq(lock.with_read(func(): return "nested read"), "nested read")
	assert_true(lock.read_unlock() and lock.read_unlock())
	assert_true(lock.write_lock() and lock.write_lock())
	assert_true(lock.read_lock(), "the writer may read under its own write lock")
	assert_eq(lock.with_write(func(): return "nested write"), "nested write")
	assert_true(lock.read_unlock() and lock.write_unlock() and lock.write_unlock())
	assert_false(lock.is_write_locked())
	assert_true(run_threads(1, func(_i: int) -> bool: return lock.try_write_lock())[0], "free again")


func test_readers_share_and_writers_wait() -> void:
	var lock := ReadWriteLock.new()
	lock.read_lock()
	var while_reading := run_threads(1, func(_i: int) -> Array:
		var shared := lock.try_read_lock()
		lock.read_unlock()
		return [shared, lock.try_write_lock(), lock.try_write_lock(20)])
	assert_eq(while_reading[0], [true, false, false], "readers share; a writer waits for readers")
	lock.read_unlock()
	lock.write_lock()
	var while_writing := run_threads(1, func(_i: int) -> Array:
		return [lock.try_read_lock(), lock.try_read_lock(20), lock.try_write_lock()])
	assert_eq(while_writing[0], [false, false, false], "nobody else while writing")
	lock.write_unlock()


func test_upgrading_a_read_to_a_write_is_refused() -> void:
	var lock := ReadWriteLock.new()
	lock.read_lock()
	expect_error("ReadWriteLock.write_lock: main holds a read lock")
	assert_false(lock.write_lock())
	expect_error("ReadWriteLock.try_write_lock: main holds a read lock")
	assert_false(lock.try_write_lock(1000))
	expect_error("ReadWriteLock.with_write: main holds a read lock")
	var ran := []
	assert_eq(lock.with_write(func(): ran.append(1)), null)
	assert_eq(ran, [], "the Callable did not run")
	assert_true(lock.read_unlock(), "the read lock was kept and is released normally")
	assert_eq(lock.with_write(func(): return "now"), "now")


func test_unlocking_what_is_not_held_is_refused() -> void:
	var lock := ReadWriteLock.new()
	expect_error("ReadWriteLock.read_unlock: no read lock is held")
	assert_false(lock.read_unlock())
	expect_error("ReadWriteLock.write_unlock: no write lock is held")
	assert_false(lock.write_unlock())
	lock.write_lock()
	lock.read_lock()
	expect_error("ReadWriteLock.write_unlock: main still holds read locks it took while writing")
	assert_false(lock.write_unlock())
	assert_true(lock.read_unlock() and lock.write_unlock())


func test_only_the_locking_thread_may_unlock() -> void:
	var lock := ReadWriteLock.new()
	lock.write_lock()
	expect_error("ReadWriteLock.write_unlock: intruder holds no write lock; another thread does")
	var intruder := run_threads(1, func(_i: int) -> bool:
		ThreadContext.set_thread_name("intruder")
		return lock.write_unlock())
	assert_eq(intruder, [false])
	assert_true(lock.is_write_locked(), "still held by the main thread")
	lock.write_unlock()
	lock.read_lock()
	expect_error("ReadWriteLock.read_unlock: intruder holds no read lock; another thread does")
	run_threads(1, func(_i: int) -> bool:
		ThreadContext.set_thread_name("intruder")
		return lock.read_unlock())
	assert_eq(lock.get_reader_count(), 1)
	lock.read_unlock()


func test_bad_arguments() -> void:
	var lock := ReadWriteLock.new()
	expect_error("ReadWriteLock.try_read_lock: timeout_ms must be 0 or more (got -5); use read_lock")
	assert_false(lock.try_read_lock(-5))
	expect_error("ReadWriteLock.with_read: the Callable is not valid")
	assert_eq(lock.with_read(Callable()), null)
	expect_error("ReadWriteLock.with_write: Godot could not call it: it needs 1 argument(s)")
	assert_eq(lock.with_write(func(_x): return 1), null)
	assert_eq([lock.get_reader_count(), lock.is_write_locked()], [0, false], "nothing left locked")


func test_writers_exclude_readers_on_real_threads() -> void:
	var lock := ReadWriteLock.new()
	var pair := {"a": 0, "b": 0}
	var torn := AtomicCounter.new()
	const OPS := 2000
	run_threads(8, func(i: int) -> void:
		for n in OPS:
			if i < 4:
				lock.with_write(func():
					pair["a"] += 1
					pair["b"] += 1)
			else:
				lock.read_lock()
				if pair["a"] != pair["b"]:
					torn.increment()
				lock.read_unlock())
	assert_eq(pair, {"a": 4 * OPS, "b": 4 * OPS}, "no increment lost")
	assert_eq(torn.get_count(), 0, "no reader saw a half-done write")
	assert_eq([lock.get_reader_count(), lock.is_write_locked()], [0, false])


func test_an_upgradable_reader_reads_beside_readers_and_excludes_writers() -> void:
	var lock := ReadWriteLock.new()
	assert_true(lock.upgradable_read_lock())
	assert_true(lock.upgradable_read_lock(), "re-entrant")
	assert_true(lock.is_upgradable_locked())
	assert_eq([lock.get_reader_count(), lock.is_write_locked()], [1, false])
	var others := run_threads(1, func(_i: int) -> Array:
		var read := lock.try_read_lock()
		lock.read_unlock()
		return [read, lock.try_upgradable_read_lock(), lock.try_upgradable_read_lock(20),
				lock.try_write_lock(), lock.try_write_lock(20)])
	assert_eq(others[0], [true, false, false, false, false],
			"plain readers share; other upgradable readers and writers wait")
	assert_true(lock.read_lock(), "it may read under its own upgradable lock")
	assert_true(lock.read_unlock() and lock.upgradable_read_unlock() and lock.upgradable_read_unlock())
	assert_eq([lock.get_reader_count(), lock.is_upgradable_locked()], [0, false])


func test_upgrade_waits_for_the_readers_and_downgrade_lets_them_back_in() -> void:
	var lock := ReadWriteLock.new()
	var reading := Semaphore.new()
	var leave := Semaphore.new()
	var reader := Thread.new()
	reader.start(func() -> void:
		lock.read_lock()
		reading.post()
		leave.wait()
		lock.read_unlock())
	reading.wait()
	assert_true(lock.upgradable_read_lock())
	assert_false(lock.try_upgrade(), "a reader is still in")
	assert_false(lock.try_upgrade(20))
	assert_true(lock.is_upgradable_locked(), "kept after the failed tries")
	leave.post()
	assert_true(lock.upgrade())
	reader.wait_to_finish()
	assert_eq([lock.is_write_locked(), lock.is_upgradable_locked(), lock.get_reader_count()], [true, false, 0])
	assert_eq(run_threads(1, func(_i: int) -> bool: return lock.try_read_lock())[0], false, "writing now")
	assert_true(lock.downgrade())
	assert_eq([lock.is_write_locked(), lock.get_reader_count()], [false, 1])
	var while_read := run_threads(1, func(_i: int) -> Array:
		var read := lock.try_read_lock()
		lock.read_unlock()
		return [read, lock.try_write_lock()])
	assert_eq(while_read[0], [true, false], "readers join after the downgrade; writers wait")
	assert_true(lock.read_unlock())
	assert_eq([lock.get_reader_count(), lock.is_write_locked()], [0, false])


## 4 threads each read a counter under the upgradable lock, upgrade, and write what they read
## plus one, 1000 times, while 2 threads write with write_lock: an upgrade never lets a writer
## in between, so no read goes stale and no increment is lost.
func test_upgrades_let_no_writer_in_between_on_real_threads() -> void:
	const ROUNDS := 1000
	var lock := ReadWriteLock.new()
	var state := {"n": 0}
	var stale := AtomicCounter.new()
	run_threads(6, func(t: int) -> void:
		for round in ROUNDS:
			if t < 4:
				lock.upgradable_read_lock()
				var seen: int = state.n
				lock.upgrade()
				if state.n != seen:
					stale.increment()
				state.n = seen + 1
				if round % 2 == 0:
					lock.write_unlock()
				else:
					lock.downgrade()
					if state.n != seen + 1:
						stale.increment()
					lock.read_unlock()
			else:
				lock.with_write(func() -> void: state.n += 1))
	assert_eq(stale.get_count(), 0, "what an upgrader read was still current")
	assert_eq(state.n, 6 * ROUNDS, "no increment lost")
	assert_eq([lock.get_reader_count(), lock.is_write_locked(), lock.is_upgradable_locked()], [0, false, false])


func test_upgrade_and_downgrade_misuse_is_refused() -> void:
	var lock := ReadWriteLock.new()
	expect_error("ReadWriteLock.upgrade: main holds no upgradable read lock, so there is nothing to upgrade")
	assert_false(lock.upgrade())
	expect_error("ReadWriteLock.downgrade: main does not hold the write lock")
	assert_false(lock.downgrade())
	expect_error("ReadWriteLock.upgradable_read_unlock: no upgradable_read lock is held")
	assert_false(lock.upgradable_read_unlock())
	lock.read_lock()
	expect_error("ReadWriteLock.upgrade: main holds a plain read lock, which cannot be upgraded")
	assert_false(lock.upgrade())
	expect_error("ReadWriteLock.try_upgrade: main holds a plain read lock")
	assert_false(lock.try_upgrade(100))
	expect_error("ReadWriteLock.upgradable_read_lock: main holds a read lock; an upgradable lock taken beside it could never be upgraded")
	assert_false(lock.upgradable_read_lock())
	lock.read_unlock()
	lock.upgradable_read_lock()
	expect_error("ReadWriteLock.write_lock: main holds the upgradable read lock; call upgrade()")
	assert_false(lock.write_lock())
	lock.read_lock()
	expect_error("ReadWriteLock.upgradable_read_unlock: main still holds read locks it took while holding the upgradable read lock")
	assert_false(lock.upgradable_read_unlock())
	lock.read_unlock()
	expect_error("ReadWriteLock.upgradable_read_unlock: intruder holds no upgradable_read lock; another thread does")
	run_threads(1, func(_i: int) -> bool:
		ThreadContext.set_thread_name("intruder")
		return lock.upgradable_read_unlock())
	assert_true(lock.is_upgradable_locked(), "still held by the main thread")
	lock.upgrade()
	expect_error("ReadWriteLock.upgradable_read_lock: main holds the write lock")
	assert_false(lock.upgradable_read_lock())
	lock.write_lock()
	expect_error("ReadWriteLock.downgrade: main took the write lock 2 times")
	assert_false(lock.downgrade())
	assert_true(lock.write_unlock() and lock.downgrade() and lock.read_unlock())
	expect_error("ReadWriteLock.try_upgrade: timeout_ms must be 0 or more (got -1); use upgrade()")
	assert_false(lock.try_upgrade(-1))
	expect_error("ReadWriteLock.try_upgradable_read_lock: timeout_ms must be 0 or more")
	assert_false(lock.try_upgradable_read_lock(-1))
	assert_eq([lock.get_reader_count(), lock.is_write_locked(), lock.is_upgradable_locked()], [0, false, false])
