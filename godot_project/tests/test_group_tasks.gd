extends "res://tests/support/processor_test_case.gd"
## AsyncTaskProcessor.submit_group(): every index once, spread over the workers, with results,
## progress, cancel and failures.


func test_a_group_covers_every_index_once() -> void:
	var processor := new_processor(2)
	var calls := AtomicCounter.new()
	var lock := Mutex.new()
	var seen := {}
	var threads := {}
	var callback_results := []
	var handle := processor.submit_group(func(i: int) -> int:
		calls.increment()
		lock.lock()
		seen[i] = seen.get(i, 0) + 1
		threads[OS.get_thread_caller_id()] = true
		lock.unlock()
		return i * i, 1000, func(results: Array) -> void: callback_results.append(results))
	var results: Array = await handle.finished
	assert_eq(calls.get_count(), 1000)
	assert_eq(seen.size(), 1000)
	assert_true(seen.values().all(func(n: int) -> bool: return n == 1), "no index ran twice")
	assert_false(OS.get_main_thread_id() in threads, "no call ran on the main thread")
	assert_eq(results.size(), 1000)
	assert_true(range(1000).all(func(i: int) -> bool: return results[i] == i * i), "results in index order")
	assert_eq(callback_results, [results], "the callback got the same results")
	assert_eq(handle.get_progress(), 1.0)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)
	assert_eq(processor.get_stats().completed, 1, "a group is one task")
	processor.queue_free()


func test_group_progress_counts_calls_done() -> void:
	var processor := new_processor(1)
	var step := Semaphore.new()
	var done := AtomicCounter.new()
	var handle := processor.submit_group(func(_i: int) -> void:
		step.wait()
		done.increment(), 4)
	var seen := [handle.get_progress()]
	for i in 4:
		step.post()
		while done.get_count() < i + 1 or handle.get_progress() < (i + 1) / 4.0:
			OS.delay_usec(100)
		seen.append(handle.get_progress())
	await handle.finished
	assert_eq(seen, [0.0, 0.25, 0.5, 0.75, 1.0])
	processor.queue_free()


func test_cancelling_a_group_skips_the_calls_not_started() -> void:
	var processor := new_processor(2)
	var calls := AtomicCounter.new()
	var handle := processor.submit_group(func(_i: int) -> void:
		calls.increment()
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200), 100000)
	assert_true(await frames_until(func() -> bool: return calls.get_count() >= 1))
	assert_true(handle.cancel())
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_CANCELLED)
	assert_true(calls.get_count() <= 2, "only the calls already running ran: %d" % calls.get_count())
	processor.queue_free()


func test_a_failing_call_fails_the_group_and_skips_the_rest() -> void:
	var processor := new_processor(1)
	var failed := []
	processor.task_failed.connect(func(_id: int, message: String) -> void: failed.append(message))
	# Godot refuses to pass an int index to a String parameter: a call error, so a failure.
	expect_error("part 0 failed: Godot could not call it: argument 1 has the wrong type")
	var handle := processor.submit_group(func(_name: String) -> void: pass, 10)
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(failed.size(), 1)
	assert_eq(handle.get_progress(), 0.1, "the failed call ran; the skipped ones do not count")
	processor.queue_free()


func test_an_empty_group_completes_with_no_results() -> void:
	var processor := new_processor(2)
	var handle := processor.submit_group(func(_i: int) -> void: pass, 0)
	assert_eq(await handle.finished, [])
	processor.queue_free()


func test_bad_group_input_is_refused_with_clear_errors() -> void:
	var processor := new_processor(1)
	expect_error("AsyncTaskProcessor.submit_group: count -1 is not between 0 and 16777216")
	var negative := processor.submit_group(func(_i: int) -> void: pass, -1)
	assert_eq(negative.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(await negative.finished, null)
	expect_error("AsyncTaskProcessor.submit_group: the task Callable is invalid")
	assert_eq(processor.submit_group(Callable(), 3).id, -1)
	expect_error("AsyncTaskProcessor.submit_group: priority 9")
	assert_eq(processor.submit_group(func(_i: int) -> void: pass, 3, Callable(), 9).id, -1)
	# A body that takes no index: Godot refuses the call, and the group says so.
	expect_error("it takes 0 argument(s), it was given 1")
	var no_index := processor.submit_group(func() -> void: pass, 3)
	assert_eq(await no_index.finished, null)
	assert_eq(no_index.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	processor.queue_free()


## A CPU-bound GDScript job: how many points of a grid fall in the Mandelbrot set, one row a call.
func _mandelbrot_row(y: int, size: int) -> int:
	var inside := 0
	for x in size:
		var c := Vector2(-2.0 + 2.5 * x / size, -1.25 + 2.5 * y / size)
		var z := Vector2.ZERO
		var n := 0
		while n < 64 and z.length_squared() <= 4.0:
			z = Vector2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c
			n += 1
		if n == 64:
			inside += 1
	return inside


func _timed_job(workers: int, size: int) -> Array:
	var processor := new_processor(workers)
	var started := Time.get_ticks_usec()
	var rows: Array = await processor.submit_group(_mandelbrot_row.bind(size), size).finished
	var elapsed := Time.get_ticks_usec() - started
	processor.queue_free()
	return [rows, elapsed]


func test_two_workers_give_the_same_answer_as_one() -> void:
	# The speedup itself is measured by `cargo xtask bench`; here only the answers count.
	var size := 96
	var expected := []
	for y in size:
		expected.append(_mandelbrot_row(y, size))
	var one: Array = await _timed_job(1, size)
	var two: Array = await _timed_job(2, size)
	assert_eq(one[0], expected)
	assert_eq(two[0], expected)
	print("parallel job (%d rows): 1 worker %d us, 2 workers %d us" % [size, one[1], two[1]])
