extends "res://tests/support/test_case.gd"
## ThreadSafeQueue: a channel between threads.

const PRODUCERS := 4
const CONSUMERS := 4
const PER_PRODUCER := 5000


## Starts [param body] on a new thread.
func _start(body: Callable) -> Thread:
	var thread := Thread.new()
	thread.start(body)
	return thread


## Gives [param thread] time to reach its blocking call, then checks it is still in it (nothing
## can have woken it yet, so this does not depend on timing).
func _assert_blocked(thread: Thread, what: String) -> void:
	OS.delay_msec(50)
	assert_true(thread.is_alive(), what + " waits")


## Pops until the queue is closed and drained; returns what it popped, in order.
func _pop_until_closed(queue: ThreadSafeQueue) -> Array:
	var popped := []
	var value = queue.pop()
	while value != null:
		popped.append(value)
		value = queue.pop()
	return popped


func test_new_queue_is_open_empty_and_unbounded() -> void:
	for queue: ThreadSafeQueue in [ThreadSafeQueue.new(), ThreadSafeQueue.create()]:
		assert_eq(queue.get_capacity(), 0)
		assert_eq(queue.size(), 0)
		assert_true(queue.is_empty())
		assert_false(queue.is_closed())
		assert_eq(str(queue), "ThreadSafeQueue(0/unbounded, open)")
	var bounded := ThreadSafeQueue.create(8)
	assert_eq(bounded.get_capacity(), 8)
	assert_true(bounded.push("a"))
	assert_eq(str(bounded), "ThreadSafeQueue(1/8, open)")
	assert_eq(ThreadSafeQueue.MAX_CAPACITY, 1 << 24)


func test_values_come_out_first_in_first_out_and_falsy_values_are_values() -> void:
	var queue := ThreadSafeQueue.new()
	var values := [0, false, "", 3.5, "text", Vector2(1, 2), [], {}, [null], PackedInt32Array([7])]
	for value: Variant in values:
		assert_true(queue.push(value), "push %s" % var_to_str(value))
	assert_eq(queue.size(), values.size())
	assert_false(queue.is_empty())
	for value: Variant in values:
		assert_eq(queue.pop(), value)
	assert_true(queue.is_empty())
	assert_true(queue.try_push(1))
	assert_true(queue.push(2, 0))
	assert_eq(queue.try_pop(), 1)
	assert_eq(queue.pop(0), 2)


func test_pops_on_an_empty_open_queue_return_null() -> void:
	var queue := ThreadSafeQueue.new()
	assert_eq(queue.try_pop(), null)
	assert_eq(queue.pop(0), null)
	assert_eq(queue.pop(10), null, "timed out")
	assert_false(queue.is_closed())


func test_a_full_bounded_queue_refuses_without_waiting_or_after_the_timeout() -> void:
	var queue := ThreadSafeQueue.create(2)
	assert_true(queue.try_push(1))
	assert_true(queue.push(2))
	assert_false(queue.try_push(3))
	assert_false(queue.push(3, 0))
	assert_false(queue.push(3, 10), "timed out")
	assert_eq(queue.size(), 2)
	assert_eq(str(queue), "ThreadSafeQueue(2/2, open)")
	assert_eq(queue.pop(), 1)
	assert_true(queue.try_push(3), "a pop made room")
	assert_eq(queue.drain(), [2, 3])


func test_a_push_on_a_full_queue_waits_until_a_pop_makes_room() -> void:
	var queue := ThreadSafeQueue.create(1)
	queue.push("first")
	var pusher := _start(func() -> bool: return queue.push("second"))
	_assert_blocked(pusher, "a push into the full queue")
	assert_eq(queue.pop(), "first")
	assert_eq(pusher.wait_to_finish(), true)
	assert_eq(queue.pop(), "second")


func test_a_pop_on_an_empty_queue_waits_until_a_push() -> void:
	var queue := ThreadSafeQueue.new()
	var popper := _start(func() -> Variant: return queue.pop())
	_assert_blocked(popper, "a pop from the empty queue")
	queue.push({"id": 1})
	assert_eq(popper.wait_to_finish(), {"id": 1})


func test_close_wakes_threads_blocked_in_pop() -> void:
	var queue := ThreadSafeQueue.new()
	var forever := _start(func() -> Variant: return queue.pop())
	var with_timeout := _start(func() -> Variant: return queue.pop(600_000))
	_assert_blocked(forever, "pop()")
	_assert_blocked(with_timeout, "pop(600000)")
	queue.close()
	assert_eq(forever.wait_to_finish(), null)
	assert_eq(with_timeout.wait_to_finish(), null)


func test_close_wakes_threads_blocked_in_push_on_a_full_queue() -> void:
	var queue := ThreadSafeQueue.create(1)
	queue.push("kept")
	var forever := _start(func() -> bool: return queue.push("refused"))
	var with_timeout := _start(func() -> bool: return queue.push("refused too", 600_000))
	_assert_blocked(forever, "push()")
	_assert_blocked(with_timeout, "push(v, 600000)")
	queue.close()
	assert_eq(forever.wait_to_finish(), false)
	assert_eq(with_timeout.wait_to_finish(), false)
	assert_eq(queue.drain(), ["kept"], "only the value queued before the close")


func test_after_close_pops_take_what_is_left_and_pushes_fail_quietly() -> void:
	var queue := ThreadSafeQueue.create(8)
	for i in 4:
		queue.push(i)
	queue.close()
	assert_true(queue.is_closed())
	assert_eq(str(queue), "ThreadSafeQueue(4/8, closed)")
	assert_false(queue.push(10), "no error: producers racing with shutdown is expected")
	assert_false(queue.push(10, 10))
	assert_false(queue.try_push(10))
	assert_eq(queue.pop(), 0)
	assert_eq(queue.try_pop(), 1)
	assert_eq(queue.pop(10), 2)
	assert_eq(queue.drain(), [3])
	assert_eq(queue.pop(), null, "closed and drained: pop() returns at once")
	assert_eq(queue.pop(600_000), null)
	assert_eq(queue.try_pop(), null)
	queue.close()
	assert_true(queue.is_closed(), "closing twice changes nothing")


func test_drain_returns_everything_queued_in_order() -> void:
	var queue := ThreadSafeQueue.create(100)
	assert_eq(queue.drain(), [])
	for i in 100:
		queue.push(i)
	assert_eq(queue.drain(), range(100))
	assert_true(queue.is_empty())
	assert_true(queue.try_push("room again"))


func _four_producers_four_consumers(queue: ThreadSafeQueue) -> void:
	var consumers: Array[Thread] = []
	for c in CONSUMERS:
		consumers.append(_start(_pop_until_closed.bind(queue)))
	run_threads(PRODUCERS, func(p: int) -> void:
		for i in PER_PRODUCER:
			queue.push(p * PER_PRODUCER + i))
	queue.close()
	var total := PRODUCERS * PER_PRODUCER
	var times_seen := PackedByteArray()
	times_seen.resize(total)
	var count := 0
	var sum := 0
	for consumer in consumers:
		var last := [-1, -1, -1, -1]
		for value: int in consumer.wait_to_finish():
			var producer := value / PER_PRODUCER
			if value <= last[producer]:
				fail("a consumer saw producer %d's %d after %d" % [producer, value, last[producer]])
			last[producer] = value
			times_seen[value] += 1
			count += 1
			sum += value
	assert_eq(count, total)
	assert_eq(sum, total * (total - 1) / 2)
	assert_eq(times_seen.count(1), total, "every item exactly once")


func test_four_producers_four_consumers_unbounded_pass_every_item_once() -> void:
	_four_producers_four_consumers(ThreadSafeQueue.new())


func test_four_producers_four_consumers_bounded_pass_every_item_once() -> void:
	_four_producers_four_consumers(ThreadSafeQueue.create(16))


func test_non_blocking_methods_from_threads_lose_nothing() -> void:
	const ITEMS := 1000
	var queue := ThreadSafeQueue.create(8)
	var taken := AtomicCounter.new()
	var results := run_threads(8, func(t: int) -> int:
		var sum := 0
		if t < 4:  # Producers: retry while full.
			for i in ITEMS:
				while not queue.try_push(i):
					OS.delay_usec(10)
				if queue.size() > 8:
					return -1_000_000  # Over capacity: poisons the total below.
		else:  # Consumers: half take one at a time, half drain.
			while taken.get_count() < 4 * ITEMS:
				var got: Array = [queue.try_pop()] if t % 2 == 0 else queue.drain()
				for value: Variant in got:
					if value != null:
						taken.increment()
						sum += value
				if queue.is_empty():
					OS.delay_usec(10)
		return sum)
	var popped_sum := 0
	for sum: int in results:
		popped_sum += sum
	assert_eq(taken.get_count(), 4 * ITEMS)
	assert_eq(popped_sum, 4 * ITEMS * (ITEMS - 1) / 2)
	assert_true(queue.is_empty())


func test_pushed_values_are_deep_copies() -> void:
	var queue := ThreadSafeQueue.new()
	var array := [1, [2]]
	var dictionary := {"inner": {"hp": 10}}
	queue.push(array)
	queue.push(array)
	queue.push(dictionary)
	array.append(3)
	array[1].append(4)
	dictionary.inner.hp = 0
	var first: Array = queue.pop()
	assert_eq(first, [1, [2]], "changing the pushed Array after the push changes nothing queued")
	first[1].append(9)
	assert_eq(queue.pop(), [1, [2]], "changing a popped Array changes no other copy")
	assert_eq(queue.pop(), {"inner": {"hp": 10}})
	var typed: Array[int] = [1, 2]
	queue.push(typed)
	var popped: Array = queue.pop()
	assert_eq(popped.get_typed_builtin(), TYPE_INT, "a typed Array stays typed")
	var object := RefCounted.new()
	queue.push(object)
	assert_true(is_same(queue.pop(), object), "objects are passed by reference")


func test_values_pushed_from_a_thread_are_copies_taken_at_the_push() -> void:
	var queue := ThreadSafeQueue.new()
	run_threads(1, func(_i: int) -> void:
		var shared := [0, {"step": 0}]
		for step in 100:
			shared[0] = step
			shared[1].step = step
			queue.push(shared))
	for step in 100:
		assert_eq(queue.pop(), [step, {"step": step}])


func test_null_and_freed_objects_are_refused_with_an_error() -> void:
	var queue := ThreadSafeQueue.new()
	expect_error("ThreadSafeQueue.push: null cannot be queued, because pop() returns null to mean 'nothing'")
	assert_false(queue.push(null))
	expect_error("ThreadSafeQueue.try_push: null cannot be queued")
	assert_false(queue.try_push(null))
	var freed := Node.new()
	freed.free()
	expect_error("(a freed object counts as null)")
	assert_false(queue.push(freed, 10))
	assert_eq(queue.size(), 0)
	assert_false(queue.is_closed(), "a refused push does not close the queue")


func test_bad_capacities_and_timeouts_are_refused_with_errors() -> void:
	expect_error("ThreadSafeQueue.create: capacity -1 is negative")
	assert_true(ThreadSafeQueue.create(-1) == null)
	expect_error("ThreadSafeQueue.create: capacity 16777217 is above the limit of 16777216")
	assert_true(ThreadSafeQueue.create(ThreadSafeQueue.MAX_CAPACITY + 1) == null)
	var queue := ThreadSafeQueue.create(1)
	expect_error("ThreadSafeQueue.push: timeout_ms -2 is not valid")
	assert_false(queue.push(1, -2))
	expect_error("ThreadSafeQueue.pop: timeout_ms -5 is not valid")
	assert_eq(queue.pop(-5), null)
	assert_eq(queue.size(), 0, "a refused push queues nothing")
	queue.push(1)
	expect_error("ThreadSafeQueue.pop: timeout_ms -7 is not valid")
	assert_eq(queue.pop(-7), null, "a refused pop takes nothing")
	assert_eq(queue.size(), 1)


func test_is_full_tells_whether_a_push_would_wait() -> void:
	var bounded := ThreadSafeQueue.create(2)
	assert_false(bounded.is_full())
	bounded.push(1)
	assert_false(bounded.is_full())
	bounded.push(2)
	assert_true(bounded.is_full())
	bounded.pop()
	assert_false(bounded.is_full(), "a pop made room")
	var unbounded := ThreadSafeQueue.create(0)
	for i in 1000:
		unbounded.push(i)
	assert_false(unbounded.is_full(), "create(0) is unbounded: never full")
	assert_eq(unbounded.get_capacity(), 0)
	assert_true(ThreadSafeQueue.create_rendezvous().is_full(), "a rendezvous queue has no room")


func test_a_rendezvous_push_returns_only_once_a_pop_took_the_value() -> void:
	var queue := ThreadSafeQueue.create_rendezvous()
	assert_eq(queue.get_capacity(), 0)
	assert_eq(str(queue), "ThreadSafeQueue(0/rendezvous, open)")
	assert_false(queue.try_push("nobody waits"), "try_push needs a waiting pop")
	assert_false(queue.push("nobody comes", 10), "timed out")
	var pusher := _start(func() -> bool: return queue.push("handed over"))
	_assert_blocked(pusher, "a push nobody pops")
	assert_eq(queue.size(), 0, "the value is not queued: the pusher still has it")
	assert_eq(queue.drain(), [])
	assert_eq(queue.pop(), "handed over")
	assert_eq(pusher.wait_to_finish(), true)


func test_a_rendezvous_try_push_succeeds_while_a_pop_waits() -> void:
	var queue := ThreadSafeQueue.create_rendezvous()
	var popper := _start(func() -> Variant: return queue.pop())
	var tries := 0
	while not queue.try_push("caught"):
		tries += 1
		OS.delay_usec(100)
	assert_eq(popper.wait_to_finish(), "caught")


func test_a_rendezvous_queue_hands_every_value_over_once() -> void:
	var queue := ThreadSafeQueue.create_rendezvous()
	var consumers: Array[Thread] = []
	for c in 2:
		consumers.append(_start(_pop_until_closed.bind(queue)))
	run_threads(4, func(p: int) -> void:
		for i in 250:
			assert_true(queue.push(p * 250 + i)))
	queue.close()
	var popped := []
	for consumer in consumers:
		popped.append_array(consumer.wait_to_finish())
	popped.sort()
	assert_eq(popped, range(1000), "every value exactly once")


func test_close_wakes_a_push_waiting_on_a_rendezvous_queue() -> void:
	var queue := ThreadSafeQueue.create_rendezvous()
	var pusher := _start(func() -> bool: return queue.push("never taken"))
	_assert_blocked(pusher, "a rendezvous push")
	queue.close()
	assert_eq(pusher.wait_to_finish(), false)
	assert_eq(queue.pop(), null, "closed, and the value was not handed over")


func test_select_takes_from_whichever_queue_has_a_value() -> void:
	var a := ThreadSafeQueue.new()
	var b := ThreadSafeQueue.create(4)
	b.push("b")
	assert_eq(ThreadSafeQueue.select([a, b]), [1, "b"])
	a.push("a")
	assert_eq(ThreadSafeQueue.select([a, b], 1000), [0, "a"])
	assert_eq(ThreadSafeQueue.select([a, b], 0), [-1, null], "both empty")
	assert_eq(ThreadSafeQueue.select([a, b], 10), [-1, null], "timed out")
	var selector := _start(func() -> Array: return ThreadSafeQueue.select([a, b]))
	_assert_blocked(selector, "select on empty queues")
	b.push({"late": true})
	assert_eq(selector.wait_to_finish(), [1, {"late": true}])


func test_select_is_fair_across_queues_that_are_always_full() -> void:
	var queues := [ThreadSafeQueue.create(1), ThreadSafeQueue.create(1)]
	queues[0].push(0)
	queues[1].push(1)
	var chosen := [0, 0]
	for i in 1000:
		var got := ThreadSafeQueue.select(queues)
		assert_eq(got[1], got[0], "the value came from the queue named")
		chosen[got[0]] += 1
		queues[got[0]].push(got[1])
	assert_eq(chosen[0] + chosen[1], 1000)
	assert_true(chosen[0] >= 300 and chosen[1] >= 300, "each picked often: %s" % [chosen])


func test_select_gives_what_closed_queues_hold_then_returns_minus_one() -> void:
	var a := ThreadSafeQueue.new()
	var b := ThreadSafeQueue.new()
	a.push(1)
	a.push(2)
	a.close()
	var popped := [ThreadSafeQueue.select([a, b]), ThreadSafeQueue.select([a, b])]
	assert_eq(popped, [[0, 1], [0, 2]])
	assert_eq(ThreadSafeQueue.select([a, b], 10), [-1, null], "b is open: a timeout")
	var selector := _start(func() -> Array: return ThreadSafeQueue.select([a, b]))
	_assert_blocked(selector, "select on a closed and an open queue")
	b.close()
	assert_eq(selector.wait_to_finish(), [-1, null], "both closed and empty")
	assert_eq(ThreadSafeQueue.select([a, b]), [-1, null], "at once")


func test_many_selecting_consumers_take_every_value_once() -> void:
	var queues := [ThreadSafeQueue.create(8), ThreadSafeQueue.new(), ThreadSafeQueue.create_rendezvous()]
	var consumers: Array[Thread] = []
	for c in 3:
		consumers.append(_start(func() -> Array:
			var got := []
			while true:
				var pair := ThreadSafeQueue.select(queues)
				if pair[0] == -1:
					return got
				got.append(pair[1])
			return got))
	run_threads(3, func(p: int) -> void:
		for i in 500:
			queues[p].push(p * 500 + i))
	for queue: ThreadSafeQueue in queues:
		queue.close()
	var popped := []
	for consumer in consumers:
		popped.append_array(consumer.wait_to_finish())
	popped.sort()
	assert_eq(popped, range(1500), "every value exactly once")


func test_select_refuses_bad_input() -> void:
	expect_error("ThreadSafeQueue.select: the Array of queues is empty")
	assert_eq(ThreadSafeQueue.select([]), [-1, null])
	expect_error("ThreadSafeQueue.select: queues[1] is String \"oops\", not a ThreadSafeQueue")
	assert_eq(ThreadSafeQueue.select([ThreadSafeQueue.new(), "oops"]), [-1, null])
	expect_error("ThreadSafeQueue.select: queues[0] is null, not a ThreadSafeQueue")
	assert_eq(ThreadSafeQueue.select([null]), [-1, null])
	expect_error("ThreadSafeQueue.select: timeout_ms -3 is not valid")
	assert_eq(ThreadSafeQueue.select([ThreadSafeQueue.new()], -3), [-1, null])


func test_after_yields_one_value_once_the_time_has_passed_then_is_closed() -> void:
	var timer := ThreadSafeQueue.after(100)
	assert_true(timer.is_closed(), "closed for pushes from the start")
	assert_false(timer.try_push(1))
	assert_eq(timer.try_pop(), null, "not yet")
	assert_eq([timer.size(), timer.is_empty(), timer.drain()], [0, true, []])
	assert_eq(timer.pop(), true, "a pop waits for it; true when no value is given")
	assert_eq(timer.pop(), null, "then closed and empty")
	assert_eq(ThreadSafeQueue.after(0, {"id": 3}).pop(0), {"id": 3})
	expect_error("ThreadSafeQueue.after: delay_ms -1 is negative")
	assert_eq(ThreadSafeQueue.after(-1), null)


func test_select_with_after_is_a_deadline() -> void:
	var results := ThreadSafeQueue.new()
	var deadline := ThreadSafeQueue.after(30, "late")
	assert_eq(ThreadSafeQueue.select([results, deadline]), [1, "late"])
	assert_eq(ThreadSafeQueue.select([results, deadline], 10), [-1, null], "spent; results is open")
	results.push("result")
	assert_eq(ThreadSafeQueue.select([results, ThreadSafeQueue.after(600_000)]), [0, "result"])


func test_for_loops_pop_until_the_queue_is_closed_and_empty() -> void:
	var queue := ThreadSafeQueue.create(16)
	var producer := _start(func() -> void:
		for i in 1000:
			queue.push(i)
		queue.close())
	var sum := 0
	var count := 0
	var last := -1
	for value: int in queue:
		assert_true(value > last, "in order")
		last = value
		sum += value
		count += 1
	producer.wait_to_finish()
	assert_eq([count, sum], [1000, 999 * 1000 / 2])
	var closed := ThreadSafeQueue.new()
	closed.push("left")
	closed.close()
	var seen := []
	for value: Variant in closed:
		seen.append(value)
	assert_eq(seen, ["left"])
	for value: Variant in closed:
		fail("a closed and empty queue has nothing to iterate")


func test_for_loops_on_threads_share_the_values() -> void:
	var queue := ThreadSafeQueue.new()
	var sums := AtomicCounter.new()
	var count := AtomicCounter.new()
	var consumers: Array[Thread] = []
	for c in 4:
		consumers.append(_start(func() -> void:
			for value: int in queue:
				sums.add(value)
				count.increment()))
	for i in 2000:
		queue.push(i)
	queue.close()
	for consumer in consumers:
		consumer.wait_to_finish()
	assert_eq([count.get_count(), sums.get_count()], [2000, 1999 * 2000 / 2])
