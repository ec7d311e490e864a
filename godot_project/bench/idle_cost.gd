extends RefCounted
## idle_cost: the CPU an AsyncTaskProcessor with 4 idle workers costs while the game idles (the
## main loop just runs frames; headless, nothing draws). Process CPU time (utime + stime from
## /proc/self/stat) over idle windows with the processor, minus the same with no extra threads:
## the difference is what the processor adds, its workers and its per-frame delivery check.
## Compared with 4 plain Threads blocked on a Semaphore, the cheapest idle threads Godot offers.
##
## The time is cut into short windows, rotating the three setups round by round, so a drift in
## the machine's load spreads over all three; the ticks of all windows of a setup are added up
## (one tick is 10 ms, too coarse for a single short window). The main loop's own CPU wobbles by
## a few ticks between windows, so the notes add two exact figures: the workers' own CPU time,
## and what the processor's per-frame delivery costs (an empty process_completed(), timed, times
## the frame rate).

const Support := preload("res://bench/support.gd")
const WORKERS := 4

var _processor: AsyncTaskProcessor
var _semaphore: Semaphore
var _threads: Array[Thread] = []


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var seconds := 3.0 if quick else 5.0  # Per setup, in total.
	var rounds := Support.rounds(quick)
	var setups := ["none", "threadkit", "threads"]
	var ticks := {"none": 0, "threadkit": 0, "threads": 0}
	var usec := {"none": 0, "threadkit": 0, "threads": 0}
	var worker_ticks := 0
	var frames := 0
	for round_index in rounds:
		for k in setups.size():
			var setup: String = setups[(round_index + k) % setups.size()]
			await _start(tree, setup)
			var workers_before := Support.thread_ticks("ThreadKit")
			var started_ticks := Support.cpu_ticks()
			var started := Time.get_ticks_usec()
			while Time.get_ticks_usec() - started < seconds / rounds * 1_000_000:
				await tree.process_frame
				frames += 1
			usec[setup] += Time.get_ticks_usec() - started
			ticks[setup] += Support.cpu_ticks() - started_ticks
			if setup == "threadkit":
				worker_ticks += Support.thread_ticks("ThreadKit") - workers_before
			_stop()
	var percent := func(setup: String) -> float:
		return 100.0 * ticks[setup] / Support.TICKS_PER_SECOND / (usec[setup] / 1_000_000.0)
	var none: float = percent.call("none")
	var threadkit: float = percent.call("threadkit") - none
	var threads: float = percent.call("threads") - none
	var fps := frames / (3.0 * seconds)
	var delivery_ns := _empty_delivery_ns(tree)
	return Support.result("%core", threadkit, threads, "added_%core", threadkit, "<1",
			"process CPU over %.0f s per setup (%d rotating windows each; 1 tick = %.2f%%): no extra threads %.2f%%, ThreadKit with %d idle workers %+.2f%%, %d Threads on a Semaphore %+.2f%%. Exact: the workers' own CPU %d ticks; an empty per-frame delivery %.0f ns = %.3f%% at the main loop's %.0f frames/s"
			% [seconds, rounds, 100.0 / seconds / Support.TICKS_PER_SECOND, none, WORKERS,
				threadkit, WORKERS, threads, worker_ticks, delivery_ns,
				delivery_ns * fps / 1e7, fps])


## ns for one process_completed() with nothing to deliver: what an idle processor does per frame.
func _empty_delivery_ns(tree: SceneTree) -> float:
	var processor := Support.start_processor(tree, WORKERS)
	var calls := 10_000
	var started := Time.get_ticks_usec()
	for i in calls:
		processor.process_completed()
	var ns := Support.ns_per(Time.get_ticks_usec() - started, calls)
	Support.free_processor(processor)
	return ns


func _start(tree: SceneTree, setup: String) -> void:
	if setup == "threadkit":
		_processor = Support.start_processor(tree, WORKERS)
	elif setup == "threads":
		_semaphore = Semaphore.new()
		for i in WORKERS:
			var thread := Thread.new()
			thread.start(_semaphore.wait)
			_threads.append(thread)
	await tree.process_frame  # Let the threads start and block before measuring.


func _stop() -> void:
	if _processor:
		Support.free_processor(_processor)
		_processor = null
	for thread in _threads:
		_semaphore.post()
	for thread in _threads:
		thread.wait_to_finish()
	_threads.clear()
