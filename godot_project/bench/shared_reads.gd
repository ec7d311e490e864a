extends RefCounted
## shared_reads: 2 GDScript threads read values N times each from one shared store.
## ThreadKit's SharedResource.read_value against the built-in way to read a Dictionary that other
## threads may write: Mutex lock, read, unlock. (Both stores hold the same 16 int keys; both loops
## pay the same GDScript overhead.) The extra column has each with one thread alone, and how
## SharedResource reads scale from 1 thread to 2 (the shared_read_scaling workload judges that).

const Support := preload("res://bench/support.gd")
const KEYS := 16

var _error := ""
## The Mutex-guarded Dictionary: a member, so the built-in side pays no lookup on some object.
var _guarded := {}


func run(_tree: SceneTree, quick: bool) -> Dictionary:
	var m := await measure(quick)
	if not _error.is_empty():
		return Support.failure(_error)
	return Support.result("ns/read", m.shared_2, m.mutex_2, "ratio", m.shared_2 / m.mutex_2,
			"<=0.7", "2 threads x %d reads, wall time per read; one thread alone: SharedResource %.0f ns, Mutex+Dictionary %.0f ns; 2 threads read %.2fx as fast as 1 with SharedResource, %.2fx with Mutex; sums checked exact"
			% [m.per_thread, m.shared_1, m.mutex_1, m.shared_1 / m.shared_2,
				m.mutex_1 / m.mutex_2])


## Medians of ns per read (wall time / reads by all threads, so 1 thread's figure over 2 threads'
## is how many times as many reads per second 2 threads get): shared_1, shared_2, mutex_1, mutex_2.
func measure(quick: bool) -> Dictionary:
	var per_thread := 100_000 if quick else 400_000
	var samples := await Support.alternate(Support.rounds(quick), [
		func() -> float: return _shared(1, per_thread),
		func() -> float: return _shared(2, per_thread),
		func() -> float: return _mutex(1, per_thread),
		func() -> float: return _mutex(2, per_thread),
	])
	var medians := samples.map(Support.median)
	return {"per_thread": per_thread, "shared_1": medians[0], "shared_2": medians[1],
			"mutex_1": medians[2], "mutex_2": medians[3], "error": _error}


func _shared(threads: int, per_thread: int) -> float:
	var store := SharedResource.new()
	for k in KEYS:
		store.write_value(k, k)
	return _time_readers(threads, per_thread, func() -> int:
		var sum := 0
		for i in per_thread:
			sum += store.read_value(i & (KEYS - 1))
		return sum)


func _mutex(threads: int, per_thread: int) -> float:
	var mutex := Mutex.new()
	_guarded = {}
	for k in KEYS:
		_guarded[k] = k
	return _time_readers(threads, per_thread, func() -> int:
		var sum := 0
		for i in per_thread:
			mutex.lock()
			sum += _guarded[i & (KEYS - 1)]
			mutex.unlock()
		return sum)


## ns per read for [param threads] threads each running [param body] (which returns its sum).
func _time_readers(threads: int, per_thread: int, body: Callable) -> float:
	var expected := per_thread / KEYS * (KEYS * (KEYS - 1) / 2)
	var timed := Support.time_threads(threads, body)
	for sum: int in timed.returns:
		if sum != expected:
			_error = "a reader summed %d, expected %d" % [sum, expected]
	return Support.ns_per(timed.usec, threads * per_thread)
