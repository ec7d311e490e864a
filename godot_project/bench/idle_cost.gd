extends RefCounted
## idle_cost: the CPU an AsyncTaskProcessor with 4 idle workers costs while the game idles (the
## main loop just runs frames; headless, nothing draws). Process CPU time (utime + stime from
## /proc/self/stat) over a window, minus the same window with no processor: the difference is what
## the processor adds, its workers and its per-frame delivery check. Compared with 4 plain Threads
## blocked on a Semaphore, the cheapest idle threads Godot offers.

const Support := preload("res://bench/support.gd")
const WORKERS := 4


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var seconds := 3.0 if quick else 5.0
	var baseline := await _window(tree, seconds)

	var processor := Support.start_processor(tree, WORKERS)
	await tree.process_frame  # Let the workers start and block.
	var workers_before := Support.thread_ticks("ThreadKit")
	var threadkit := await _window(tree, seconds)
	var worker_ticks := Support.thread_ticks("ThreadKit") - workers_before
	Support.free_processor(processor)

	var semaphore := Semaphore.new()
	var threads: Array[Thread] = []
	for i in WORKERS:
		var thread := Thread.new()
		thread.start(semaphore.wait)
		threads.append(thread)
	await tree.process_frame
	var builtin := await _window(tree, seconds)
	for thread in threads:
		semaphore.post()
	for thread in threads:
		thread.wait_to_finish()

	var added: float = threadkit.percent - baseline.percent
	return Support.result("%core", added, builtin.percent - baseline.percent, "added_%core", added,
			"<1", "process CPU over %.0f s windows: no threads %.2f%%, ThreadKit with %d idle workers %.2f%% (the workers' own CPU: %d ticks), %d Threads on a Semaphore %.2f%%; main loop at %.0f frames/s; 1 tick = %.2f%% here"
			% [seconds, baseline.percent, WORKERS, threadkit.percent, worker_ticks, WORKERS,
				builtin.percent, baseline.fps, 100.0 / seconds / Support.TICKS_PER_SECOND])


## Idles (awaiting frames) for [param seconds]; returns {percent: process CPU in % of one core, fps}.
func _window(tree: SceneTree, seconds: float) -> Dictionary:
	var ticks := Support.cpu_ticks()
	var started := Time.get_ticks_usec()
	var frames := 0
	while Time.get_ticks_usec() - started < seconds * 1_000_000:
		await tree.process_frame
		frames += 1
	var elapsed := (Time.get_ticks_usec() - started) / 1_000_000.0
	var used := float(Support.cpu_ticks() - ticks) / Support.TICKS_PER_SECOND
	return {"percent": 100.0 * used / elapsed, "fps": frames / elapsed}
