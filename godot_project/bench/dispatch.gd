extends RefCounted
## dispatch: 2 Threads each send N no-op calls to the main thread, which runs them all.
## ThreadKit: MainThreadDispatcher.dispatch(noop). Built-in: noop.call_deferred(), from the same
## threads. The time runs from starting the threads until the last of the 2 x N calls ran on the
## main thread, so it holds sending, queueing and running.
##
## Throughput: the main thread drains ThreadKit's queue by hand (process_queue() in a loop, with
## no frame budget), while call_deferred's calls run when the main loop flushes its message queue
## each frame; both drain while the threads still send.
##
## Frame budget: the same flood with the defaults (2 ms budget, ThreadKit's own per-frame drain),
## frame by frame: how long ThreadKit's drains and the frames took, against call_deferred, whose
## flush runs everything queued at once. With 2 busy senders the main thread may have to wait for
## a CPU in the middle of a drain, which no budget can prevent; so the worst drain is also given
## for frames in which the main thread never waited for a CPU (Linux /proc schedstat).

const Support := preload("res://bench/support.gd")
const THREADS := 2
const FLOOD := 200_000  # Items in the frame budget phase, in total.
## Waiting longer than this for the calls to run means some never will: fail instead of hanging.
const DEADLINE_USEC := 30_000_000
## Waiting for a CPU less than this in a frame counts as not waiting (timer ticks and such).
const NO_WAIT_USEC := 100

## Calls run so far. A plain int is exact here: both ways run every call on the main thread.
var _ran := 0
var _expected := 0
## When the last expected call ran: the end of a measurement, without the wait for the main loop
## to resume this script after it (up to a frame for call_deferred).
var _done_usec := 0
var _error := ""


## The no-op sent to the main thread. It counts, and stamps the time of the last call.
func _noop() -> void:
	_ran += 1
	if _ran == _expected:
		_done_usec = Time.get_ticks_usec()


func run(tree: SceneTree, quick: bool) -> Dictionary:
	var per_thread := 20_000 if quick else 100_000
	var threadkit := []
	var builtin := []
	# Like Support.alternate (each round rotates which side runs first, and the first round warms
	# up and is not counted), but it stops at the first wrong count: a round that waited out
	# DEADLINE_USEC would only wait it out again in every later round.
	for round_index in Support.rounds(quick) + 1:
		for k in 2:
			var sample: float
			if (round_index + k) % 2 == 0:
				sample = _throughput_threadkit(per_thread)
			else:
				sample = await _throughput_builtin(tree, per_thread)
			if not _error.is_empty():
				return Support.failure(_error)
			if round_index > 0:
				(threadkit if (round_index + k) % 2 == 0 else builtin).append(sample)
	var flood_threadkit := await _flood(tree, "threadkit")
	var flood_builtin := await _flood(tree, "builtin")
	if not _error.is_empty():
		return Support.failure(_error)
	var unwaited: int = flood_threadkit.worst_unwaited_drain_usec
	var tk := Support.median(threadkit)
	var cd := Support.median(builtin)
	return Support.result("ns/item", tk, cd, "ratio", tk / cd, "<=1.0",
			"%d threads x %d no-op calls to the main thread, from starting the threads until all ran; MainThreadDispatcher.dispatch drained by process_queue() with no budget vs Callable.call_deferred flushed by the main loop; counts checked exact. Flood of %d with the default budget: ThreadKit worst drain %d us vs budget %d us (%s in frames where the main thread never waited for a CPU; %d drains stopped by it) over %d frames, worst frame %.1f ms; call_deferred ran all in %d frame(s), worst frame %.1f ms"
			% [THREADS, per_thread, FLOOD, flood_threadkit.worst_drain_usec,
				flood_threadkit.budget_usec, "%d us" % unwaited if unwaited >= 0 else "no such frame",
				flood_threadkit.over_budget, flood_threadkit.frames,
				flood_threadkit.worst_frame_usec / 1000.0, flood_builtin.frames,
				flood_builtin.worst_frame_usec / 1000.0])


## ns per item with MainThreadDispatcher, the main thread draining by hand as fast as it can.
func _throughput_threadkit(per_thread: int) -> float:
	var budget: int = MainThreadDispatcher.get_stats().frame_budget_usec
	MainThreadDispatcher.set_frame_budget_usec(0)  # No limit: the throughput, not the pacing.
	var started := _start(_send_dispatch.bind(per_thread), per_thread)
	var threads: Array[Thread] = started.threads
	# A drain stops at the length it started with, so loop until every call ran.
	while _ran < _expected and Time.get_ticks_usec() - started.usec < DEADLINE_USEC:
		MainThreadDispatcher.process_queue()
	_join(threads)
	MainThreadDispatcher.set_frame_budget_usec(budget)
	_check("MainThreadDispatcher")
	return Support.ns_per(_done_usec - started.usec, _expected)


## ns per item with call_deferred: the main loop runs the calls when it flushes its message queue.
func _throughput_builtin(tree: SceneTree, per_thread: int) -> float:
	var started := _start(_send_deferred.bind(per_thread), per_thread)
	var threads: Array[Thread] = started.threads
	while _ran < _expected and Time.get_ticks_usec() - started.usec < DEADLINE_USEC:
		await tree.process_frame
	_join(threads)
	_check("call_deferred")
	return Support.ns_per(_done_usec - started.usec, _expected)


## The flood of FLOOD items with the defaults, watched frame by frame: {frames, worst_frame_usec}
## and, for ThreadKit, the worst drain time (overall, and in frames without a wait for a CPU), the
## budget and how many drains it cut short.
func _flood(tree: SceneTree, side: String) -> Dictionary:
	var send := _send_deferred if side == "builtin" else _send_dispatch
	var stats_before := MainThreadDispatcher.get_stats()
	# Start right after a frame began, so the frames counted hold the flood alone, and the first
	# last_drain_usec read is this frame's drain, not one of the throughput phase's.
	await tree.process_frame
	var per_thread := FLOOD / THREADS
	var started := _start(send.bind(per_thread), per_thread)
	var threads: Array[Thread] = started.threads
	var result := {"frames": 0, "worst_frame_usec": 0, "worst_drain_usec": 0,
			"worst_unwaited_drain_usec": -1}  # -1: the main thread waited in every frame.
	var frame_start: int = started.usec
	var waited_before := _cpu_wait_usec()
	while _ran < _expected and Time.get_ticks_usec() - started.usec < DEADLINE_USEC:
		# process_frame is emitted before nodes process: the drain read here is last frame's.
		await tree.process_frame
		var now := Time.get_ticks_usec()
		var waited := _cpu_wait_usec()
		var drain_usec: int = MainThreadDispatcher.get_stats().last_drain_usec
		result.frames += 1
		result.worst_frame_usec = maxi(result.worst_frame_usec, now - frame_start)
		result.worst_drain_usec = maxi(result.worst_drain_usec, drain_usec)
		if waited - waited_before < NO_WAIT_USEC:
			result.worst_unwaited_drain_usec = maxi(result.worst_unwaited_drain_usec, drain_usec)
		frame_start = now
		waited_before = waited
	_join(threads)
	var stats := MainThreadDispatcher.get_stats()
	result.budget_usec = stats.frame_budget_usec
	result.over_budget = stats.drains_over_budget - stats_before.drains_over_budget  # Cut short.
	_check("MainThreadDispatcher flood" if side == "threadkit" else "call_deferred flood")
	return result


## How long the calling thread has been ready to run but waiting for a CPU, in microseconds
## (the second field of /proc/thread-self/schedstat, in nanoseconds); 0 where it is unreadable.
func _cpu_wait_usec() -> int:
	var fields := Support.read_proc("/proc/thread-self/schedstat").split(" ")
	return fields[1].to_int() / 1000 if fields.size() > 1 else 0


## Starts THREADS threads running [param send] (one of the senders below), each sending
## [param per_thread] calls: {threads, usec (when the first started)}.
func _start(send: Callable, per_thread: int) -> Dictionary:
	_ran = 0
	_expected = THREADS * per_thread
	_done_usec = 0
	var started := Time.get_ticks_usec()
	var threads: Array[Thread] = []
	for i in THREADS:
		var thread := Thread.new()
		thread.start(send)
		threads.append(thread)
	return {"threads": threads, "usec": started}


## The two senders, run by the threads: the same loop around each way of sending.
func _send_dispatch(count: int) -> void:
	var noop := _noop
	for n in count:
		MainThreadDispatcher.dispatch(noop)


func _send_deferred(count: int) -> void:
	var noop := _noop
	for n in count:
		noop.call_deferred()


func _join(threads: Array[Thread]) -> void:
	for thread in threads:
		thread.wait_to_finish()


func _check(variant: String) -> void:
	if _ran != _expected and _error.is_empty():
		_error = "%s: %d calls ran, expected %d" % [variant, _ran, _expected]
