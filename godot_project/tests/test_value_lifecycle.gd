extends "res://tests/support/test_case.gd"
## Freeing SharedResource, ReadWriteLock, ThreadSafeQueue and ThreadSafeNodeManager while their
## methods run user code or wait, and Callables that call back into the object they run under.
##
## The objects are kept in member variables on purpose: a GDScript call on a member does not hold
## a reference of its own, so dropping the member drops the last reference while the call runs.

var _store: SharedResource
var _lock: ReadWriteLock
var _queue: ThreadSafeQueue


## Starts [param body] on a new thread.
func _start(body: Callable) -> Thread:
	var thread := Thread.new()
	thread.start(body)
	return thread


## Gives [param threads] time to reach their blocking call, then checks they are still in it.
func _assert_blocked(threads: Array[Thread], what: String) -> void:
	OS.delay_msec(100)
	for thread in threads:
		assert_true(thread.is_alive(), what + " waits")


func test_an_update_value_callable_may_drop_the_last_reference_to_its_store() -> void:
	_store = SharedResource.new()
	_store.write_value("n", 1)
	var watch: WeakRef = weakref(_store)
	var result = _store.update_value("n", func(old: int) -> int:
		_store = null
		return old + 1)
	assert_eq(result, 2, "the update completes and returns its value")
	assert_eq(watch.get_ref(), null, "the store is freed once update_value returns")


func test_a_with_write_callable_may_drop_the_last_reference_to_its_lock() -> void:
	_lock = ReadWriteLock.new()
	var watch: WeakRef = weakref(_lock)
	var result = _lock.with_write(func() -> String:
		_lock = null
		return "done")
	assert_eq(result, "done")
	assert_eq(watch.get_ref(), null, "the lock is freed once with_write returns")


func test_a_with_read_callable_may_drop_the_last_reference_to_its_lock() -> void:
	_lock = ReadWriteLock.new()
	var watch: WeakRef = weakref(_lock)
	var result = _lock.with_read(func() -> int:
		_lock = null
		return 7)
	assert_eq(result, 7)
	assert_eq(watch.get_ref(), null)


func test_freeing_a_queue_wakes_threads_blocked_in_pop_and_push() -> void:
	_queue = ThreadSafeQueue.create(1)
	assert_true(_queue.push("fills it"))
	var popper := ThreadSafeQueue.new()
	var blocked: Array[Thread] = [_start(func() -> bool: return _queue.push("no room", -1)),
			_start(func() -> bool: return _queue.push("no room either", -1))]
	_assert_blocked(blocked, "push on a full queue")
	expect_error("ThreadSafeQueue.push: the queue was freed while waiting")
	_queue = null
	for thread in blocked:
		assert_eq(thread.wait_to_finish(), false, "a push woken by the free queued nothing")
	_queue = popper
	blocked = [_start(func() -> Variant: return _queue.pop()),
			_start(func() -> Variant: return _queue.pop(-1))]
	_assert_blocked(blocked, "pop on an empty queue")
	expect_error("ThreadSafeQueue.pop: the queue was freed while waiting")
	popper = null
	_queue = null
	for thread in blocked:
		assert_eq(thread.wait_to_finish(), null, "a pop woken by the free returns null")


func test_freeing_a_lock_wakes_threads_blocked_in_write_lock_and_read_lock() -> void:
	_lock = ReadWriteLock.new()
	assert_true(_lock.write_lock())
	var blocked: Array[Thread] = [_start(func() -> bool: return _lock.write_lock()),
			_start(func() -> bool: return _lock.read_lock()),
			_start(func() -> Variant: return _lock.with_write(func() -> String: return "ran"))]
	_assert_blocked(blocked, "a lock held by the main thread")
	expect_error("ReadWriteLock.write_lock: the lock was freed while waiting")
	expect_error("ReadWriteLock.read_lock: the lock was freed while waiting")
	expect_error("ReadWriteLock.with_write: the lock was freed while waiting")
	_lock = null  # The main thread's write lock goes with it: nothing can unlock it any more.
	assert_eq(thread_results(blocked), [false, false, null], "woken, refused, Callable not run")


func test_a_lock_freed_while_a_thread_runs_with_write_stays_exclusive_until_it_returns() -> void:
	_lock = ReadWriteLock.new()
	var inside := Semaphore.new()
	var leave := Semaphore.new()
	var writer := _start(func() -> String:
		return _lock.with_write(func() -> String:
			inside.post()
			leave.wait()
			return "finished"))
	inside.wait()
	var waiter := _start(func() -> bool: return _lock.try_write_lock(5000))
	_assert_blocked([waiter], "try_write_lock while with_write runs")
	expect_error("ReadWriteLock.try_write_lock: the lock was freed while waiting")
	_lock = null
	leave.post()
	assert_eq(writer.wait_to_finish(), "finished", "with_write completes on the freed lock")
	assert_eq(waiter.wait_to_finish(), false)


## What [param threads] returned, in order.
func thread_results(threads: Array[Thread]) -> Array:
	var results := []
	for thread in threads:
		results.append(thread.wait_to_finish())
	return results


func test_a_node_manager_freed_while_threads_query_it_does_not_crash() -> void:
	for round in 3:
		var manager := ThreadSafeNodeManager.new()
		var nodes: Array[Node] = []
		for i in 20000:
			var node := Node.new()
			nodes.append(node)
			manager.register_node("node_%d" % i, node)
		# Threads list the names (a call long enough for the free to land inside it) until the
		# gate closes. Calling a node that is being freed is a race in Godot itself, so no call
		# starts once the gate is closed; calls already running must finish without harm.
		var gate := Mutex.new()
		var open := [true]
		var calls := AtomicCounter.new()
		var call_usec := AtomicCounter.new()
		var threads: Array[Thread] = []
		for t in 2:
			threads.append(_start(func() -> void:
				while true:
					gate.lock()
					var go: bool = open[0]
					gate.unlock()
					if not go:
						return
					var start := Time.get_ticks_usec()
					manager.get_registered_names()
					call_usec.set_count(Time.get_ticks_usec() - start)
					calls.increment()))
		while calls.get_count() < 4:
			OS.delay_usec(100)
		gate.lock()
		open[0] = false
		gate.unlock()
		OS.delay_usec(call_usec.get_count() / 4)  # Calls that passed the gate are under way.
		manager.free()
		for thread in threads:
			thread.wait_to_finish()
		for node in nodes:
			node.free()
		assert_false(is_instance_valid(manager), "round %d" % round)


func test_update_value_callables_that_call_back_into_their_store_get_answers_or_clear_errors() -> void:
	var store := SharedResource.new()
	store.write_value("a", 1)
	var seen := {}
	var result = store.update_value("a", func(old: int) -> int:
		seen["version"] = store.get_version()
		seen["stats"] = store.get_access_statistics()
		seen["size"] = store.size()
		seen["keys"] = store.keys()
		seen["text"] = str(store)
		return old + 1)
	assert_eq(result, 2)
	assert_eq(seen["version"], 1, "the version needs no lock")
	assert_eq([seen["stats"]["total_writes"], seen["size"], seen["keys"]], [1, 1, ["a"]], "reads answer, with the value before the update")
	assert_true(seen["text"].begins_with("SharedResource("), "printing it works: %s" % seen["text"])
	assert_eq(store.read_value("a"), 2)


func test_with_read_and_with_write_callables_that_call_back_into_their_lock() -> void:
	var lock := ReadWriteLock.new()
	var seen := []
	var result = lock.with_write(func() -> String:
		seen.append([lock.is_write_locked(), lock.get_reader_count(), str(lock)])
		seen.append(lock.with_read(func() -> String: return "read under my write"))
		seen.append(lock.with_write(func() -> String: return "write again"))
		seen.append(lock.try_read_lock(10))
		seen.append(lock.read_unlock())
		return "outer")
	assert_eq(result, "outer")
	assert_eq(seen, [[true, 0, "ReadWriteLock(readers=0, writer=true)"], "read under my write",
			"write again", true, true])
	expect_error("holds a read lock, and waiting for the write lock would wait for itself")
	var inner = lock.with_read(func() -> Array:
		return [lock.with_read(func() -> int: return lock.get_reader_count()),
				lock.with_write(func() -> String: return "never runs")])
	assert_eq(inner, [1, null], "a nested read works; an upgrade is refused with an error")
	assert_false(lock.is_write_locked())
	assert_eq(lock.get_reader_count(), 0, "everything was released")


func test_freeing_queues_wakes_a_thread_blocked_in_select() -> void:
	var queues := [ThreadSafeQueue.new(), ThreadSafeQueue.create_rendezvous()]
	var selector := _start(func() -> Array: return ThreadSafeQueue.select(queues))
	_assert_blocked([selector], "select on empty queues")
	expect_error("ThreadSafeQueue.select: the queue was freed while waiting")
	queues.clear()  # The selecting call took no reference: the queues go now.
	assert_eq(selector.wait_to_finish(), [-1, null])


func test_a_queue_freed_while_select_waits_is_reported_when_another_queue_gives_the_value() -> void:
	var queues := [ThreadSafeQueue.new(), ThreadSafeQueue.new()]
	var other: ThreadSafeQueue = queues[1]
	var selector := _start(func() -> Array: return ThreadSafeQueue.select(queues))
	_assert_blocked([selector], "select on empty queues")
	expect_error("ThreadSafeQueue.select: the queue was freed while waiting")
	queues.remove_at(0)  # The selecting call took no reference: the first queue goes now.
	assert_true(other.push("late"))
	assert_eq(selector.wait_to_finish(), [1, "late"], "the value of the queue left")


func test_freeing_a_lock_wakes_threads_blocked_in_upgradable_read_lock_and_upgrade() -> void:
	_lock = ReadWriteLock.new()
	assert_true(_lock.read_lock())
	var upgrading := Semaphore.new()
	var upgrader := _start(func() -> bool:
		_lock.upgradable_read_lock()
		upgrading.post()
		return _lock.upgrade())  # Waits for the main thread's read.
	upgrading.wait()
	var second := _start(func() -> bool: return _lock.upgradable_read_lock())
	_assert_blocked([upgrader, second], "an upgrade past a reader, a second upgradable reader")
	expect_error("ReadWriteLock.upgrade: the lock was freed while waiting")
	expect_error("ReadWriteLock.upgradable_read_lock: the lock was freed while waiting")
	_lock = null
	assert_eq(thread_results([upgrader, second]), [false, false], "woken and refused")
