extends "res://tests/support/test_case.gd"
## Helpers for tests of AsyncTaskProcessor and TaskHandle.


## A processor with [param workers] threads, in the tree (so it delivers every frame).
func new_processor(workers := 2) -> AsyncTaskProcessor:
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = workers
	add_child(processor)  # autostart: the workers start in _ready.
	return processor


## Waits (frame by frame, so completions are delivered) until [param done] returns true.
func frames_until(done: Callable, max_frames := 600) -> bool:
	for i in max_frames:
		if done.call():
			return true
		await get_tree().process_frame
	return false


## Submits a task that holds its worker until the returned Semaphore is posted (or the task is
## cancelled), and waits until it runs, so that what is submitted next queues up behind it.
func hold_worker(processor: AsyncTaskProcessor) -> Semaphore:
	var gate := Semaphore.new()
	var id := processor.submit_task(func() -> void:
		while not gate.try_wait() and not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200))
	while processor.get_task_status(id) != AsyncTaskProcessor.STATUS_RUNNING:
		OS.delay_usec(100)
	return gate
