extends RefCounted
## task_latency: one tiny task at a time, submitted and its result delivered to a main-thread
## callback before the next: the round trip through an idle worker (its wake-up included).
##
## ThreadKit: submit_task, then process_completed() in a loop until the callback ran. Built-in:
## WorkerThreadPool.add_task, wait_for_task_completion, then the callback with the result.

const Support := preload("res://bench/support.gd")
const WORKERS := 2

var _arrived := 0
var _result := 0
var _error := ""


func _task() -> int:
	return 1


func _on_result(value: int) -> void:
	_arrived += 1
	_result = value


func _store_result() -> void:
	_result = _task()


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var trips := 200 if quick else 1000
	var processor := Support.start_processor(tree, WORKERS)
	var samples := await Support.alternate(Support.rounds(quick), [
		func() -> float: return _threadkit(processor, trips),
		func() -> float: return _builtin(trips),
	])
	Support.free_processor(processor)
	if not _error.is_empty():
		return Support.failure(_error)
	var threadkit := Support.median(samples[0])
	var builtin := Support.median(samples[1])
	return Support.result("ns/round_trip", threadkit, builtin, "ratio", threadkit / builtin, "",
			"%d sequential round trips per round (submit, run on a worker, callback on the main thread); %d ThreadKit workers vs WorkerThreadPool.add_task at its default (low) priority"
			% [trips, WORKERS])


func _threadkit(processor: AsyncTaskProcessor, trips: int) -> float:
	var task := _task
	var callback := _on_result
	_arrived = 0
	var started := Time.get_ticks_usec()
	for i in trips:
		processor.submit_task(task, callback)
		while _arrived == i:
			processor.process_completed()
	var usec := Time.get_ticks_usec() - started
	_check("AsyncTaskProcessor", trips)
	return Support.ns_per(usec, trips)


func _builtin(trips: int) -> float:
	var store := _store_result
	var callback := _on_result
	_arrived = 0
	var started := Time.get_ticks_usec()
	for i in trips:
		_result = 0
		var id := WorkerThreadPool.add_task(store)
		WorkerThreadPool.wait_for_task_completion(id)
		callback.call(_result)
	var usec := Time.get_ticks_usec() - started
	_check("WorkerThreadPool", trips)
	return Support.ns_per(usec, trips)


func _check(variant: String, trips: int) -> void:
	if _arrived != trips or _result != 1:
		_error = "%s: %d callbacks (last result %d), expected %d with 1" % [variant, _arrived, _result, trips]
