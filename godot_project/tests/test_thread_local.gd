extends "res://tests/support/test_case.gd"
## ThreadLocal: one value per thread, made by a factory, released exactly once when its thread
## ends or the ThreadLocal is freed.
##
## The ThreadLocal is kept in a member variable where a test frees it while threads use it: a
## GDScript call on a member holds no reference of its own, so dropping the member frees it.

var _local: ThreadLocal


## A value that counts its own release into [member released].
class Tracked extends RefCounted:
	var released: AtomicCounter
	var made_on: int

	func _init(counter: AtomicCounter) -> void:
		released = counter
		made_on = OS.get_thread_caller_id()

	func _notification(what: int) -> void:
		if what == NOTIFICATION_PREDELETE:
			released.increment()


func _tracked_factory(made: AtomicCounter, released: AtomicCounter) -> Callable:
	return func() -> Tracked:
		made.increment()
		return Tracked.new(released)


func test_each_thread_gets_its_own_value_made_once_there() -> void:
	var made := AtomicCounter.new()
	var released := AtomicCounter.new()
	_local = ThreadLocal.create(_tracked_factory(made, released))
	var mine: Tracked = _local.get_value()
	assert_true(is_same(_local.get_value(), mine), "the same value on the same thread")
	assert_eq(mine.made_on, OS.get_thread_caller_id(), "made on the thread that asked")
	assert_true(_local.has_value())
	var theirs := run_threads(8, func(_i: int) -> Array:
		var value: Tracked = _local.get_value()
		for n in 100:
			if not is_same(_local.get_value(), value):
				return [-1, false]
		return [value.get_instance_id(), value.made_on == OS.get_thread_caller_id()])
	var ids := {mine.get_instance_id(): true}
	for pair: Array in theirs:
		assert_true(pair[1], "made on its own thread")
		ids[pair[0]] = true
	assert_eq(ids.size(), 9, "nine threads, nine distinct values")
	assert_eq(made.get_count(), 9, "the factory ran once per thread")
	assert_eq(released.get_count(), 8, "the threads' values went when they ended")
	assert_eq(_local.get_value_count(), 1, "only the main thread's is left")
	assert_eq(str(_local), "ThreadLocal(values=1)")
	mine = null
	_local = null
	assert_eq(released.get_count(), 9, "the main thread's went with the ThreadLocal")


func test_values_are_released_when_their_threads_end() -> void:
	var made := AtomicCounter.new()
	var released := AtomicCounter.new()
	var local := ThreadLocal.create(_tracked_factory(made, released))
	var threads: Array[Thread] = []
	for i in 8:
		var thread := Thread.new()
		thread.start(func() -> bool: return local.get_value() != null)
		threads.append(thread)
	for thread in threads:
		assert_true(thread.wait_to_finish())
	assert_eq([made.get_count(), released.get_count()], [8, 8])
	assert_eq(local.get_value_count(), 0)
	assert_false(local.has_value(), "the main thread never asked")


func test_freeing_it_while_threads_hold_values_releases_each_value_once() -> void:
	var made := AtomicCounter.new()
	var released := AtomicCounter.new()
	_local = ThreadLocal.create(_tracked_factory(made, released))
	var have_value := Semaphore.new()
	var go_on := Semaphore.new()
	var threads: Array[Thread] = []
	for i in 8:
		var thread := Thread.new()
		thread.start(func() -> bool:
			var ok := _local.get_value() != null
			have_value.post()
			go_on.wait()  # The ThreadLocal is freed meanwhile; the thread ends after.
			return ok)
		threads.append(thread)
	for i in 8:
		have_value.wait()
	assert_eq(made.get_count(), 8)
	assert_eq(released.get_count(), 0)
	_local = null
	assert_eq(released.get_count(), 8, "every value released with the ThreadLocal")
	for i in 8:
		go_on.post()
	for thread in threads:
		assert_true(thread.wait_to_finish())
	assert_eq(released.get_count(), 8, "and not again when the threads ended")


func test_a_thread_keeps_using_its_value_after_the_thread_local_is_freed() -> void:
	var released := AtomicCounter.new()
	_local = ThreadLocal.create(_tracked_factory(AtomicCounter.new(), released))
	var got := Semaphore.new()
	var go_on := Semaphore.new()
	var thread := Thread.new()
	thread.start(func() -> int:
		var value: Tracked = _local.get_value()  # A reference of its own.
		got.post()
		go_on.wait()
		return value.released.get_count())
	got.wait()
	_local = null
	assert_eq(released.get_count(), 0, "the thread still holds its value")
	go_on.post()
	assert_eq(thread.wait_to_finish(), 0)
	assert_eq(released.get_count(), 1, "released once the thread let go of it")


func test_clear_value_releases_this_threads_value_and_the_next_get_makes_a_new_one() -> void:
	var made := AtomicCounter.new()
	var released := AtomicCounter.new()
	var local := ThreadLocal.create(_tracked_factory(made, released))
	assert_false(local.clear_value(), "nothing to clear")
	var first_id: int = local.get_value().get_instance_id()
	assert_true(local.clear_value())
	assert_false(local.has_value())
	assert_eq(released.get_count(), 1)
	assert_ne(local.get_value().get_instance_id(), first_id)
	assert_eq(made.get_count(), 2)


func test_values_of_any_type_are_the_threads_own_and_not_copies() -> void:
	var local := ThreadLocal.create(func() -> Dictionary: return {"hits": 0})
	var counts := run_threads(4, func(_i: int) -> int:
		for n in 1000:
			local.get_value().hits += 1  # The same Dictionary every time: no copy.
		return local.get_value().hits)
	assert_eq(counts, [1000, 1000, 1000, 1000], "no thread saw another's increments")


func test_a_factory_that_fails_keeps_nothing_and_is_tried_again() -> void:
	var calls := AtomicCounter.new()
	var local := ThreadLocal.create(func() -> Variant:
		return null if calls.increment() == 1 else "made")
	expect_error("ThreadLocal.get_value: the factory returned null")
	assert_eq(local.get_value(), null)
	assert_false(local.has_value())
	assert_eq(local.get_value(), "made", "tried again")
	var needs_argument := ThreadLocal.create(func(_x: int) -> int: return 1)
	expect_error("ThreadLocal.get_value: the factory could not be called")
	assert_eq(needs_argument.get_value(), null)
	var coroutine := ThreadLocal.create(func() -> int:
		await get_tree().process_frame
		return 1)
	expect_error("ThreadLocal.get_value: the factory is a coroutine")
	assert_eq(coroutine.get_value(), null)
	assert_eq(coroutine.get_value_count(), 0)


func test_a_factory_that_stops_at_a_script_error_or_whose_object_was_freed_makes_nothing() -> void:
	var failing := ThreadLocal.create(func() -> Variant:
		var nothing: Variant = null
		return nothing.explode())
	expect_error("Nonexistent function 'explode'")
	assert_eq(failing.get_value(), null)
	assert_false(failing.has_value())
	var owner := Node.new()
	var orphaned := ThreadLocal.create(owner.get_name)
	owner.free()
	expect_error("ThreadLocal.get_value: the factory could not be called")
	assert_eq(orphaned.get_value(), null)
	assert_eq(orphaned.get_value_count(), 0)


func test_a_factory_asking_for_the_value_it_makes_is_refused() -> void:
	_local = ThreadLocal.create(func() -> Array: return [_local.get_value()])
	expect_error("ThreadLocal.get_value: the factory asked this ThreadLocal for the value it is making")
	assert_eq(_local.get_value(), [null], "the inner call got null; the outer value was kept")
	assert_eq(_local.get_value(), [null])
	_local = null


func test_a_factory_may_free_the_thread_local_it_makes_a_value_for() -> void:
	var released := AtomicCounter.new()
	_local = ThreadLocal.create(func() -> Tracked:
		_local = null
		return Tracked.new(released))
	var value: Tracked = _local.get_value()
	assert_true(value != null, "the value is returned")
	assert_eq(_local, null)
	value = null
	assert_eq(released.get_count(), 1, "and not kept: nothing else refers to it")


func test_bad_input() -> void:
	expect_error("ThreadLocal.create: the factory Callable is not valid")
	assert_true(ThreadLocal.create(Callable()) == null)


func test_processor_workers_each_get_one_value_released_when_the_workers_stop() -> void:
	var made := AtomicCounter.new()
	var released := AtomicCounter.new()
	_local = ThreadLocal.create(_tracked_factory(made, released))
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 2
	add_child(processor)
	var seen := ThreadSafeQueue.new()
	for i in 100:
		processor.submit_task(func() -> void:
			seen.push([OS.get_thread_caller_id(), _local.get_value().get_instance_id()]))
	assert_true(processor.wait_all(10000))
	var value_of_thread := {}
	for pair: Array in seen.drain():
		if value_of_thread.get(pair[0], pair[1]) != pair[1]:
			fail("a thread got two different values")
		value_of_thread[pair[0]] = pair[1]
	assert_eq(made.get_count(), value_of_thread.size(), "the factory ran once per thread that asked")
	var distinct_values := {}
	for value_id: int in value_of_thread.values():
		distinct_values[value_id] = true
	assert_eq(distinct_values.size(), value_of_thread.size(), "each thread its own value")
	# The main thread may have run tasks itself while it waited: its value stays until the end.
	var main_value := 1 if value_of_thread.has(OS.get_main_thread_id()) else 0
	processor.free()  # Joins its workers.
	assert_eq(released.get_count(), made.get_count() - main_value, "released when the workers ended")
	assert_eq(_local.get_value_count(), main_value)
	_local = null
	assert_eq(released.get_count(), made.get_count())
