extends "res://tests/support/processor_test_case.gd"
## A GDScript runtime error raised while ThreadKit runs user code fails that work: a task (and a
## group) ends STATUS_FAILED with the error and its backtrace, and update_value keeps the value
## it had. push_error and push_warning do not: the function runs on and its result stands.

const NULL_CALL := "Nonexistent function 'explode' in base 'Nil'"


## Raises a runtime error (calling a method on null) and, like Godot, returns null from here.
func _explode() -> Variant:
	var nothing: Variant = null
	return nothing.explode()


## Calls itself [param depth] more times, then raises a runtime error at the bottom.
func _explode_deep(depth: int) -> Variant:
	if depth == 0:
		return _explode()
	return _explode_deep(depth - 1)


func test_a_runtime_error_fails_the_task_with_its_message_and_backtrace() -> void:
	var processor := new_processor(1)
	var failures := []
	processor.task_failed.connect(func(id: int, message: String) -> void: failures.append([id, message]))
	var handle := processor.run(func() -> int:
		_explode()
		return 42)  # Godot carries on after the error: without ThreadKit the task "completed" 42.
	expect_error(NULL_CALL)
	expect_error("AsyncTaskProcessor: task %d failed: SCRIPT ERROR" % handle.id)
	var result = await handle.finished
	assert_eq(result, null, "a failed task delivers null")
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	var error := handle.get_error()
	assert_true(error.begins_with("SCRIPT ERROR: "), error)
	assert_true(NULL_CALL in error, error)
	assert_true("test_script_errors.gd:12 in " in error, "names where: " + error)
	assert_true("GDScript backtrace" in error and "_explode" in error, "has the backtrace: " + error)
	assert_eq(failures, [[handle.id, error]], "task_failed(id, message)")
	assert_eq(processor.get_stats().failed, 1)


func test_the_error_text_is_bounded() -> void:
	var processor := new_processor(1)
	var key := "k".repeat(20_000)
	var handle := processor.run(func() -> Variant: return {}[key])
	var handle_deep := processor.run(func() -> Variant: return _explode_deep(30))
	expect_error("Invalid access to property or key")
	expect_error(NULL_CALL)
	expect_error("failed: SCRIPT ERROR")
	await handle_deep.finished
	if handle.get_status() != AsyncTaskProcessor.STATUS_FAILED:
		await handle.finished
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(handle.get_error().length() < 2000, "a 20 000-character key is cut: %d characters" % handle.get_error().length())
	assert_true("bytes)" in handle.get_error(), "says how long the text was")
	var deep := handle_deep.get_error()
	assert_true(deep.length() < 4000, "33 frames are cut: %d characters" % deep.length())
	assert_true("more frame(s)" in deep, deep)


func test_push_error_and_push_warning_leave_the_task_its_result() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> int:
		push_error("a reported, non-fatal problem")
		push_warning("a warning")
		return 7)
	expect_error("a reported, non-fatal problem")
	assert_eq(await handle.finished, 7)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)


func test_a_runtime_error_in_submit_task_skips_the_callback() -> void:
	var processor := new_processor(1)
	var called := []
	var failed := []
	processor.task_failed.connect(func(id: int, _message: String) -> void: failed.append(id))
	var id := processor.submit_task(func(): return _explode(), func(result) -> void: called.append(result))
	expect_error(NULL_CALL)
	expect_error("task %d failed" % id)
	assert_true(await frames_until(func() -> bool: return not failed.is_empty()), "task_failed arrived")
	assert_eq(failed, [id])
	assert_eq(called, [], "a failed task's callback is not called")
	assert_eq(processor.get_task_status(id), AsyncTaskProcessor.STATUS_FAILED)


func test_a_runtime_error_in_one_call_fails_the_group() -> void:
	var processor := new_processor(2)
	var handle := processor.submit_group(func(i: int) -> int:
		if i == 3:
			_explode()
		return i, 8)
	expect_error(NULL_CALL)
	expect_error("failed: SCRIPT ERROR")
	assert_eq(await handle.finished, null)
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_true(NULL_CALL in handle.get_error(), handle.get_error())


## Many tasks raising errors at once on every worker: each failing task fails, each other one
## completes, exactly (the logger is called on each worker, concurrently).
func test_concurrent_errors_fail_exactly_the_tasks_that_raised_them() -> void:
	var processor := new_processor(4)
	var ended := AtomicCounter.new()
	processor.task_failed.connect(func(_id: int, _message: String) -> void: ended.increment())
	processor.task_completed.connect(func(_id: int, _result: Variant) -> void: ended.increment())
	var handles: Array[TaskHandle] = []
	for i in 200:
		handles.append(processor.run(func() -> int:
			if i % 2 == 0:
				_explode()
			return i))
	expect_error(NULL_CALL)
	expect_error("failed: SCRIPT ERROR")
	assert_true(await frames_until(func() -> bool: return ended.get_count() == 200), "all delivered")
	var wrong := []
	for i in handles.size():
		var expected := AsyncTaskProcessor.STATUS_FAILED if i % 2 == 0 else AsyncTaskProcessor.STATUS_COMPLETED
		if handles[i].get_status() != expected or (i % 2 == 1 and handles[i].get_result() != i):
			wrong.append(i)
	assert_eq(wrong, [], "tasks with the wrong outcome")
	assert_eq(processor.get_stats().failed, 100)
	assert_eq(processor.get_stats().completed, 100)


## Errors raised on other threads (a Thread of the game, the main thread) while tasks run belong
## to no task: the tasks complete.
func test_errors_on_other_threads_fail_no_task() -> void:
	var processor := new_processor(2)
	var stop := AtomicCounter.new()
	var handles: Array[TaskHandle] = []
	for i in 50:
		handles.append(processor.run(func() -> int:
			OS.delay_usec(200)
			return i))
	var thread := Thread.new()
	thread.start(func() -> void:
		while stop.get_count() == 0:
			_explode())
	for i in 20:
		_explode()
	expect_error(NULL_CALL)
	assert_true(await frames_until(func() -> bool: return handles.all(func(h: TaskHandle) -> bool: return h.is_done())))
	stop.increment()
	thread.wait_to_finish()
	assert_eq(processor.get_stats().completed, 50)
	assert_eq(processor.get_stats().failed, 0)


## A task run inline by the task that waits for it fails alone; the waiting task gets null.
func test_a_task_run_inline_fails_alone() -> void:
	var processor := new_processor(1)
	var handle := processor.run(func() -> Array:
		var inner := processor.submit_task(func(): return _explode())
		return [processor.wait_for_task(inner), processor.get_task_status(inner)])
	expect_error(NULL_CALL)
	expect_error("failed: SCRIPT ERROR")
	assert_eq(await handle.finished, [null, AsyncTaskProcessor.STATUS_FAILED])
	assert_eq(handle.get_status(), AsyncTaskProcessor.STATUS_COMPLETED)


func test_update_value_keeps_the_old_value_on_a_runtime_error() -> void:
	var shared := SharedResource.new()
	shared.write_value("gold", 10)
	var version := shared.get_version()
	var returned = shared.update_value("gold", func(old: int) -> int:
		_explode()
		return old + 1)  # Godot carries on: without ThreadKit, 11 would be stored.
	expect_error(NULL_CALL)
	expect_error("SharedResource.update_value: the Callable stopped at a script error")
	assert_eq(returned, null)
	assert_eq(shared.read_value("gold"), 10, "the value is unchanged, not null")
	assert_eq(shared.get_version(), version, "nothing was written")
	assert_eq(shared.update_value("gold", func(old: int) -> int: return old + 1), 11, "it works on")


## A script error inside a Callable that a task runs under ThreadKit (update_value, with_write)
## happened in the task too: the task fails, and the value stays.
func test_a_runtime_error_inside_update_value_in_a_task_fails_the_task() -> void:
	var processor := new_processor(1)
	var shared := SharedResource.new()
	shared.write_value("n", 1)
	var lock := ReadWriteLock.new()
	var by_update := processor.run(func() -> int:
		shared.update_value("n", func(_old: Variant) -> Variant: return _explode())
		return 1)
	var by_lock := processor.run(func() -> int:
		lock.with_write(func() -> void: _explode())
		return 2)
	expect_error(NULL_CALL)
	expect_error("SharedResource.update_value")
	expect_error("failed: SCRIPT ERROR")
	await by_update.finished
	if not by_lock.is_done():
		await by_lock.finished
	assert_eq(by_update.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(by_lock.get_status(), AsyncTaskProcessor.STATUS_FAILED)
	assert_eq(shared.read_value("n"), 1)
	assert_false(lock.is_write_locked(), "with_write released its lock")
