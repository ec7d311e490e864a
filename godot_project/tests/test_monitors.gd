extends "res://tests/support/processor_test_case.gd"
## ThreadKit's debugger monitors: Performance custom monitors under "ThreadKit/".

const DEPTH := &"ThreadKit/dispatcher_queue_depth"
const PENDING := &"ThreadKit/tasks_pending"
const BUSY := &"ThreadKit/busy_workers"
const RATE := &"ThreadKit/tasks_completed_per_second"


func _noop() -> void:
	pass


func _monitor(id: StringName) -> Variant:
	return Performance.get_custom_monitor(id)


## Queues [param count] tasks on [param processor], each returning its index.
func _submit(processor: AsyncTaskProcessor, count: int) -> void:
	for i in count:
		assert_true(processor.submit_task(func() -> int: return i) > 0)


func test_the_four_monitors_exist() -> void:
	for id: StringName in [DEPTH, PENDING, BUSY, RATE]:
		assert_true(Performance.has_custom_monitor(id), "%s is a custom monitor" % id)


func test_dispatcher_queue_depth_is_the_dispatchers_pending_count() -> void:
	var before := MainThreadDispatcher.pending_count()
	for i in 7:
		assert_true(MainThreadDispatcher.dispatch(_noop))
	# No frame passes in between, so nothing drains the queue.
	assert_eq(_monitor(DEPTH), before + 7)
	assert_eq(_monitor(DEPTH), MainThreadDispatcher.pending_count())
	while MainThreadDispatcher.pending_count() > 0:
		MainThreadDispatcher.process_queue()
	assert_eq(_monitor(DEPTH), 0)


func test_pending_tasks_and_busy_workers_of_a_processor() -> void:
	var processor := new_processor(1)
	assert_eq([_monitor(PENDING), _monitor(BUSY)], [0, 0], "idle")
	var gate := hold_worker(processor)
	_submit(processor, 5)
	assert_eq(_monitor(PENDING), 5, "queued behind the held worker")
	assert_eq(_monitor(BUSY), 1, "the held worker")
	gate.post()
	assert_true(processor.wait_all(5000))
	assert_eq([_monitor(PENDING), _monitor(BUSY)], [0, 0], "all done")
	processor.free()


func test_a_task_run_inline_by_a_waiting_task_keeps_its_worker_counted_once() -> void:
	var processor := new_processor(1)
	var gate := hold_worker(processor)
	# Read inside the inner task, which the outer one runs inline on the only worker.
	var inner := processor.submit_task(func() -> Array:
		var stats := processor.get_stats()
		return [stats.running, stats.busy_workers, _monitor(BUSY)])
	var outer := processor.submit_task(func() -> Variant: return processor.wait_for_task(inner),
			Callable(), AsyncTaskProcessor.PRIORITY_HIGH)
	gate.post()
	assert_eq(processor.wait_for_task(outer, 5000), [2, 1, 1], "[running, busy_workers, monitor]")
	processor.free()


func test_two_processors_sum() -> void:
	var first := new_processor(1)
	var second := new_processor(1)
	var gates := [hold_worker(first), hold_worker(second)]
	_submit(first, 2)
	_submit(second, 3)
	assert_eq(_monitor(PENDING), 5)
	assert_eq(_monitor(BUSY), 2)
	for gate: Semaphore in gates:
		gate.post()
	assert_true(first.wait_all(5000) and second.wait_all(5000))
	assert_eq([_monitor(PENDING), _monitor(BUSY)], [0, 0])
	first.free()
	second.free()


func test_a_freed_processor_no_longer_counts() -> void:
	var kept := new_processor(1)
	var kept_gate := hold_worker(kept)
	_submit(kept, 1)
	# Its task runs until the free cancels it.
	var freed := AsyncTaskProcessor.new()
	assert_true(freed.start_workers(1))
	var held := freed.submit_task(func() -> void:
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(100))
	while freed.get_task_status(held) != AsyncTaskProcessor.STATUS_RUNNING:
		OS.delay_usec(100)
	_submit(freed, 2)
	assert_eq([_monitor(PENDING), _monitor(BUSY)], [3, 2], "both processors")
	freed.free()
	assert_eq([_monitor(PENDING), _monitor(BUSY)], [1, 1], "only the processor still alive")
	kept_gate.post()
	assert_true(kept.wait_all(5000))
	kept.free()


func test_completed_tasks_show_in_the_completion_rate() -> void:
	var processor := new_processor(2)
	_submit(processor, 10)
	assert_true(processor.wait_all(5000))
	var rate: Variant = _monitor(RATE)
	assert_eq(typeof(rate), TYPE_FLOAT)
	assert_true(rate > 0.0, "10 completions since the previous reading: %s per second" % rate)
	processor.free()


func test_a_freed_processors_completions_still_count_in_the_rate() -> void:
	_monitor(RATE)  # A reading before the completions below.
	var processor := new_processor(2)
	_submit(processor, 10)
	assert_true(processor.wait_all(5000))
	processor.free()
	var rate: float = _monitor(RATE)
	assert_true(rate > 0.0, "10 completions since the previous reading: %s per second" % rate)
