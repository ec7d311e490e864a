extends RefCounted
## task_round_trip: N tiny tasks (a no-op returning an int) run on 2 workers, each result handed to
## a callback on the main thread. Throughput: everything is submitted, then the main thread
## delivers as fast as it can (no waiting for frames), so the time is the machinery, not frame pacing.
##
## ThreadKit: AsyncTaskProcessor.submit_task(task, callback), then process_completed() in a loop
## until every callback ran. Built-in: WorkerThreadPool.add_task per task (the result goes back
## through the task's own slot in an Array, as WorkerThreadPool returns nothing), then per task
## wait_for_task_completion and the callback.

const Support := preload("res://bench/support.gd")
const WORKERS := 2

var _arrived := 0
var _sum := 0
var _results := []
var _error := ""


func _task() -> int:
	return 1


func _on_result(value: int) -> void:
	_arrived += 1
	_sum += value


## The built-in task: WorkerThreadPool returns nothing, so the result goes to slot [param i].
func _store_result(i: int) -> void:
	_results[i] = _task()


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var tasks := 500 if quick else 2000
	var processor := Support.start_processor(tree, WORKERS)
	var samples := await Support.alternate(Support.rounds(quick), [
		func() -> float: return _threadkit(processor, tasks),
		func() -> float: return _builtin(tasks),
	])
	Support.free_processor(processor)
	if not _error.is_empty():
		return Support.failure(_error)
	var threadkit := Support.median(samples[0])
	var builtin := Support.median(samples[1])
	return Support.result("ns/task", threadkit, builtin, "ratio", threadkit / builtin, "<=0.5",
			"%d no-op tasks per round; %d ThreadKit workers vs WorkerThreadPool.add_task at its default (low) priority; submit all, then deliver every result to a main-thread callback"
			% [tasks, WORKERS])


func _threadkit(processor: AsyncTaskProcessor, tasks: int) -> float:
	var task := _task
	var callback := _on_result
	_arrived = 0
	_sum = 0
	var started := Time.get_ticks_usec()
	for i in tasks:
		processor.submit_task(task, callback)
	while _arrived < tasks:
		processor.process_completed()
	var usec := Time.get_ticks_usec() - started
	_check("AsyncTaskProcessor", tasks)
	return Support.ns_per(usec, tasks)


func _builtin(tasks: int) -> float:
	var store := _store_result
	var callback := _on_result
	_arrived = 0
	_sum = 0
	_results.resize(tasks)  # Sized up front: workers only write their own slot, never resize.
	_results.fill(0)
	var ids := PackedInt64Array()
	ids.resize(tasks)
	var started := Time.get_ticks_usec()
	for i in tasks:
		ids[i] = WorkerThreadPool.add_task(store.bind(i))
	for i in tasks:
		WorkerThreadPool.wait_for_task_completion(ids[i])
		callback.call(_results[i])
	var usec := Time.get_ticks_usec() - started
	_check("WorkerThreadPool", tasks)
	return Support.ns_per(usec, tasks)


func _check(variant: String, tasks: int) -> void:
	if _arrived != tasks or _sum != tasks:
		_error = "%s: %d callbacks with sum %d, expected %d of 1 each" % [variant, _arrived, _sum, tasks]
