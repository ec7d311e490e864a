extends "res://tests/support/test_case.gd"
## ThreadSafetyTester: exact counts for every synchronised strategy, lost updates in every run of
## the unsynchronised one, the deadlock demo in both modes, and every out-of-range argument refused.

const RACE_KEYS := ["expected_count", "actual_count", "duration_us", "thread_safe", "ops_per_sec"]
const ROW_KEYS := ["name", "expected", "actual", "correct", "duration_us", "ns_per_op", "lesson"]
const STRATEGIES := ["unsynchronized", "atomic", "parking_lot Mutex", "std Mutex",
		"RwLock (writes)", "spin lock", "channel to one owner"]
const DEMO_KEYS := ["ordered", "transfers_done", "transfers_expected", "deadlocks_detected",
		"reports", "total_before", "total_after", "conserved", "duration_us", "completed"]


func test_concurrent_test_is_exact_and_reports_typed_keys() -> void:
	var result := ThreadSafetyTester.new().run_concurrent_test(4, 50_000)
	assert_eq(result.keys(), RACE_KEYS)
	assert_eq(result.expected_count, 200_000)
	assert_eq(result.actual_count, 200_000)
	assert_eq(result.thread_safe, true)
	assert_eq(typeof(result.duration_us), TYPE_INT)
	assert_eq(typeof(result.ops_per_sec), TYPE_FLOAT)
	assert_true(result.ops_per_sec > 0.0, "a rate for a race that happened")


func test_unsafe_test_loses_updates_in_every_run_with_several_threads() -> void:
	var tester := ThreadSafetyTester.new()
	# The README's size, and the smallest race that can lose: two threads, one increment each.
	for size in [[4, 1_000_000, 3], [4, 10_000, 10], [2, 1, 20]]:
		var expected: int = size[0] * size[1]
		var lost_in := 0
		for run in size[2]:
			var result := tester.run_unsafe_test(size[0], size[1])
			assert_eq(result.keys(), RACE_KEYS)
			assert_eq(result.expected_count, expected)
			assert_true(result.actual_count <= result.expected_count, "a lost update never adds")
			assert_eq(result.thread_safe, result.actual_count == result.expected_count)
			if not result.thread_safe:
				lost_in += 1
		assert_eq(lost_in, size[2], "runs of %d x %d that lost updates" % [size[0], size[1]])


func test_unsafe_test_on_one_thread_loses_nothing() -> void:
	var result := ThreadSafetyTester.new().run_unsafe_test(1, 100_000)
	assert_eq(result.actual_count, 100_000)
	assert_eq(result.thread_safe, true)


func test_compare_strategies_rows_in_order_and_exact_but_the_unsynchronized_one() -> void:
	var tester := ThreadSafetyTester.new()
	for run in 5:
		var rows := tester.compare_strategies(3, 20_000)
		var names := []
		for row: Dictionary in rows:
			names.append(row.name)
			assert_eq(row.keys(), ROW_KEYS, row.name)
			assert_eq(row.expected, 60_000, row.name)
			assert_eq(typeof(row.duration_us), TYPE_INT, row.name)
			assert_eq(typeof(row.ns_per_op), TYPE_FLOAT, row.name)
			assert_eq(typeof(row.lesson), TYPE_STRING, row.name)
			assert_true(row.lesson.length() > 20, "a sentence to read: " + row.name)
			assert_eq(row.correct, row.actual == row.expected, row.name)
			if row.name == "unsynchronized":
				assert_eq(row.correct, false, "unsynchronized, run %d" % run)
				assert_true(row.actual < 60_000, "unsynchronized, run %d" % run)
			else:
				assert_eq(row.actual, 60_000, row.name)
				assert_eq(row.correct, true, "%s, run %d" % [row.name, run])
		assert_eq(names, STRATEGIES)
		assert_true("core" in rows[5].lesson, "the spin lock's lesson says it burns a core")


func test_compare_strategies_on_one_thread_is_exact_for_every_strategy() -> void:
	for row: Dictionary in ThreadSafetyTester.new().compare_strategies(1, 10_000):
		assert_eq(row.actual, 10_000, row.name)
		assert_eq(row.correct, true, row.name)


func test_ordered_deadlock_demo_completes_with_no_detection() -> void:
	var result := ThreadSafetyTester.new().run_deadlock_demo(true, 200)
	assert_eq(result.keys(), DEMO_KEYS)
	assert_eq(result.ordered, true)
	assert_eq(result.deadlocks_detected, 0)
	assert_eq(result.reports, [])
	assert_eq(result.transfers_expected, 2000)
	assert_eq(result.transfers_done, 2000)
	assert_eq(result.completed, true)
	assert_eq(result.total_before, 20_000)
	assert_eq(result.total_after, 20_000)
	assert_eq(result.conserved, true)
	assert_eq(typeof(result.duration_us), TYPE_INT)


func test_unordered_deadlock_demo_detects_reports_and_recovers() -> void:
	var result := ThreadSafetyTester.new().run_deadlock_demo(false, 50)
	assert_eq(result.keys(), DEMO_KEYS)
	assert_eq(result.ordered, false)
	assert_true(result.deadlocks_detected >= 1, "the first transfers always deadlock")
	assert_eq(result.reports.size(), result.deadlocks_detected)
	for report in result.reports:
		assert_eq(typeof(report), TYPE_STRING)
		assert_true(report.begins_with("deadlock: "), report)
		assert_true("transfer-A-to-B" in report and "transfer-B-to-A" in report, report)
		assert_true("holds account" in report and "waits for account" in report, report)
	assert_true(result.reports[0] in [
		"deadlock: transfer-A-to-B holds account A and waits for account B, held by transfer-B-to-A, which waits for account A",
		"deadlock: transfer-B-to-A holds account B and waits for account A, held by transfer-A-to-B, which waits for account B",
	], "the wait-for cycle, from the thread that found it")
	assert_eq(result.transfers_done, 2000)
	assert_eq(result.completed, true)
	assert_eq(result.total_after, result.total_before)
	assert_eq(result.conserved, true)


func test_out_of_range_arguments_are_refused_and_nothing_runs() -> void:
	var tester := ThreadSafetyTester.new()
	var races := {
		"num_threads 0 is out of range; pass 1 to 64": [0, 10],
		"num_threads 65 is out of range; pass 1 to 64": [65, 10],
		"num_threads -2 is out of range; pass 1 to 64": [-2, 10],
		"operations_per_thread 0 is out of range; pass 1 to 10000000": [2, 0],
		"operations_per_thread 10000001 is out of range; pass 1 to 10000000": [2, 10_000_001],
	}
	for message: String in races:
		var args: Array = races[message]
		expect_error("ThreadSafetyTester.run_concurrent_test: " + message)
		assert_eq(tester.run_concurrent_test(args[0], args[1]), {}, message)
		expect_error("ThreadSafetyTester.run_unsafe_test: " + message)
		assert_eq(tester.run_unsafe_test(args[0], args[1]), {}, message)
		expect_error("ThreadSafetyTester.compare_strategies: " + message)
		var rows := tester.compare_strategies(args[0], args[1])
		assert_true(rows.is_empty(), message)
	for timeout_ms in [0, -5, 60_001]:
		var message := "ThreadSafetyTester.run_deadlock_demo: timeout_ms %d is out of range; pass 1 to 60000" % timeout_ms
		expect_error(message)
		assert_eq(tester.run_deadlock_demo(false, timeout_ms), {}, message)


func test_works_from_other_threads_at_once() -> void:
	var tester := ThreadSafetyTester.new()
	var results := run_threads(2, func(i: int) -> Array:
		var demo := tester.run_deadlock_demo(i == 0, 30)
		var race := tester.run_concurrent_test(2, 10_000)
		var rows := tester.compare_strategies(2, 1_000)
		return [demo.completed, demo.conserved, demo.deadlocks_detected >= 1, race.actual_count,
				rows.size(), rows[1].actual])
	assert_eq(results[0], [true, true, false, 20_000, 7, 2_000], "ordered, on a thread")
	assert_eq(results[1], [true, true, true, 20_000, 7, 2_000], "not ordered, on a thread")
	expect_error("ThreadSafetyTester.run_concurrent_test: num_threads 100")
	assert_eq(run_threads(1, func(_i: int) -> Dictionary:
		return tester.run_concurrent_test(100, 1))[0], {}, "refused on a thread too")
