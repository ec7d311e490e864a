extends RefCounted
## soak: a million tiny tasks through one AsyncTaskProcessor, in batches drained with
## process_completed(). Memory must not grow with the number of tasks: resident memory after a
## warm-up batch (queues, maps and allocator pools at their working size) against the end.

const Support := preload("res://bench/support.gd")
const WORKERS := 2
const BATCH := 10_000

var _arrived := 0


func _task() -> int:
	return 1


func _on_result(_value: int) -> void:
	_arrived += 1


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var total := 100_000 if quick else 1_000_000
	var processor := Support.start_processor(tree, WORKERS)
	_batch(processor)  # Warm-up, not counted.
	var rss_before := Support.rss_kib()
	_arrived = 0
	var started := Time.get_ticks_usec()
	for b in total / BATCH:
		_batch(processor)
	var usec := Time.get_ticks_usec() - started
	var rss_after := Support.rss_kib()
	var stats: Dictionary = processor.get_stats()
	Support.free_processor(processor)
	if _arrived != total or stats.completed != total + BATCH or stats.pending != 0:
		return Support.failure("%d callbacks of %d; stats %s" % [_arrived, total, stats])
	var growth_mb := (rss_after - rss_before) / 1024.0
	return Support.result("ns/task", Support.ns_per(usec, total), null, "rss_growth_MiB",
			growth_mb, "<5", "%d tasks in batches of %d on %d workers: %.0f tasks/s; RSS %.1f MiB after warm-up, %.1f MiB at the end"
			% [total, BATCH, WORKERS, total * 1_000_000.0 / usec, rss_before / 1024.0,
				rss_after / 1024.0])


## Submits BATCH tasks and delivers them all.
func _batch(processor: AsyncTaskProcessor) -> void:
	var task := _task
	var callback := _on_result
	var target := _arrived + BATCH
	for i in BATCH:
		processor.submit_task(task, callback)
	while _arrived < target:
		processor.process_completed()
