extends "res://tests/support/test_case.gd"

const THREADS := 8


func test_new_counter_starts_at_zero_and_enabled() -> void:
	var counter := AtomicCounter.new()
	assert_eq(counter.get_count(), 0)
	assert_eq(counter.get_sum(), 0.0)
	assert_true(counter.is_enabled())
	assert_eq(str(counter), "AtomicCounter(0)")


func test_operations_return_new_values() -> void:
	var counter := AtomicCounter.new()
	assert_eq(counter.increment(), 1)
	assert_eq(counter.increment(), 2)
	assert_eq(counter.decrement(), 1)
	assert_eq(counter.add(41), 42)
	assert_eq(counter.add(-50), -8)
	counter.set_count(10)
	assert_eq(counter.get_count(), 10)
	assert_eq(counter.add_value(1.5), 1.5)
	assert_eq(counter.reset(), 10, "reset returns the old count")
	assert_eq(counter.get_count(), 0)
	assert_eq(counter.get_sum(), 0.0, "reset clears the sum")


func test_is_64_bit_and_wraps_like_gdscript_int() -> void:
	var counter := AtomicCounter.new()
	counter.set_count(1 << 40)
	assert_eq(counter.increment(), (1 << 40) + 1)
	counter.set_count(9223372036854775807)
	assert_eq(counter.increment(), -9223372036854775807 - 1)


func test_compare_and_set_applies_only_on_match() -> void:
	var counter := AtomicCounter.new()
	counter.set_count(5)
	assert_false(counter.compare_and_set(4, 100))
	assert_eq(counter.get_count(), 5)
	assert_true(counter.compare_and_set(5, 100))
	assert_eq(counter.get_count(), 100)


func test_increments_from_8_threads_are_exact() -> void:
	var counter := AtomicCounter.new()
	run_threads(THREADS, func(_i: int) -> void:
		for n in 100_000:
			counter.increment())
	assert_eq(counter.get_count(), THREADS * 100_000)


func test_mixed_adds_and_decrements_from_threads_total_exactly() -> void:
	var counter := AtomicCounter.new()
	# Even threads add 3 and take 1 away; odd threads add -2 and add 5: +2 and +3 per round.
	run_threads(THREADS, func(i: int) -> void:
		for n in 10_000:
			if i % 2 == 0:
				counter.add(3)
				counter.decrement()
			else:
				counter.add(-2)
				counter.add(5))
	assert_eq(counter.get_count(), (THREADS / 2) * 10_000 * 2 + (THREADS / 2) * 10_000 * 3)


func test_compare_and_set_retry_loop_from_threads_is_exact() -> void:
	var counter := AtomicCounter.new()
	run_threads(THREADS, func(_i: int) -> void:
		for n in 2_000:
			while true:
				var seen := counter.get_count()
				if counter.compare_and_set(seen, seen + 2):
					break)
	assert_eq(counter.get_count(), THREADS * 2_000 * 2)


func test_increment_if_less_than_from_threads_never_exceeds_and_reaches_threshold() -> void:
	var counter := AtomicCounter.new()
	var wins := run_threads(THREADS, func(_i: int) -> int:
		var won := 0
		for n in 500:
			if counter.try_increment_if_less_than(1000):
				won += 1
			if counter.get_count() > 1000:
				return -1_000_000  # Overshoot seen: poisons the total below.
		return won)
	var total := 0
	for won: int in wins:
		total += won
	assert_eq(counter.get_count(), 1000)
	assert_eq(total, 1000, "exactly 1000 calls succeed across all threads")
	assert_false(counter.try_increment_if_less_than(1000))


func test_float_sum_from_threads_is_exact() -> void:
	var counter := AtomicCounter.new()
	run_threads(THREADS, func(_i: int) -> void:
		for n in 10_000:
			counter.add_value(0.5))
	assert_eq(counter.get_sum(), THREADS * 10_000 * 0.5)
	assert_eq(counter.get_sum(), 40000.0)


func test_disabled_counter_stays_put() -> void:
	var counter := AtomicCounter.new()
	counter.set_count(7)
	counter.add_value(2.0)
	counter.set_enabled(false)
	assert_false(counter.is_enabled())
	run_threads(THREADS, func(_i: int) -> void:
		for n in 1_000:
			counter.increment()
			counter.decrement()
			counter.add(5)
			counter.add_value(1.0)
			counter.try_increment_if_less_than(1_000_000))
	assert_eq(counter.get_count(), 7)
	assert_eq(counter.get_sum(), 2.0)
	assert_eq(counter.increment(), 7, "increment returns the unchanged count while disabled")
	assert_false(counter.try_increment_if_less_than(100))


func test_explicit_writes_apply_while_disabled_and_counting_resumes() -> void:
	var counter := AtomicCounter.new()
	counter.set_enabled(false)
	counter.set_count(3)
	assert_true(counter.compare_and_set(3, 4))
	assert_eq(counter.reset(), 4)
	counter.set_enabled(true)
	assert_eq(counter.increment(), 1)


func test_reentrant_use_from_callables() -> void:
	var counter := AtomicCounter.new()
	# A method Callable bound to the counter, called from many threads.
	var add_two := counter.add.bind(2)
	run_threads(THREADS, func(_i: int) -> void:
		for n in 1_000:
			add_two.call())
	assert_eq(counter.get_count(), THREADS * 2_000)
	# A Callable that calls back into the counter while another of its calls is in progress.
	var nested := func() -> bool:
		return counter.compare_and_set(counter.get_count(), counter.add(counter.increment()))
	counter.set_count(1)
	assert_false(nested.call(), "the inner calls changed the count first")
	assert_eq(counter.get_count(), 4)
	# Called later by the engine, from a deferred call.
	counter.increment.call_deferred()
	await get_tree().process_frame
	assert_eq(counter.get_count(), 5)
