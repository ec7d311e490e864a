extends RefCounted
## counter: 2 GDScript threads increment one shared count N times each. ThreadKit's
## AtomicCounter.increment() against the built-in way to do it safely: Mutex lock, += 1, unlock.
## Both sides pay the same GDScript loop and thread start, so the ratio is the increment itself.
## The same with one thread alone (no contention) tells the cost of a call from the cost of sharing.

const Support := preload("res://bench/support.gd")
const THREADS := 2

## The Mutex-guarded int: a member, so the built-in side pays no property lookup on some object.
var _guarded := 0
var _error := ""


func run(_tree: SceneTree, quick: bool) -> Dictionary:
	var per_thread := 100_000 if quick else 500_000
	var samples := await Support.alternate(Support.rounds(quick), [
		func() -> float: return _atomic(THREADS, per_thread),
		func() -> float: return _mutex(THREADS, per_thread),
		func() -> float: return _atomic(1, per_thread),
		func() -> float: return _mutex(1, per_thread),
	])
	if not _error.is_empty():
		return Support.failure(_error)
	var medians := samples.map(Support.median)
	var atomic: float = medians[0]
	var mutex: float = medians[1]
	return Support.result("ns/increment", atomic, mutex, "ratio", atomic / mutex, "<=0.5",
			"%d threads x %d increments, wall time per increment; one thread alone: AtomicCounter %.0f ns, Mutex %.0f ns; counts checked exact every round"
			% [THREADS, per_thread, medians[2], medians[3]])


## ns per increment with AtomicCounter.
func _atomic(threads: int, per_thread: int) -> float:
	var counter := AtomicCounter.new()
	var usec: int = Support.time_threads(threads, func() -> void:
		for i in per_thread:
			counter.increment()).usec
	_check("AtomicCounter", counter.get_count(), threads * per_thread)
	return Support.ns_per(usec, threads * per_thread)


## ns per increment with a Mutex around += 1.
func _mutex(threads: int, per_thread: int) -> float:
	var mutex := Mutex.new()
	_guarded = 0
	var usec: int = Support.time_threads(threads, func() -> void:
		for i in per_thread:
			mutex.lock()
			_guarded += 1
			mutex.unlock()).usec
	_check("Mutex + int", _guarded, threads * per_thread)
	return Support.ns_per(usec, threads * per_thread)


func _check(variant: String, count: int, expected: int) -> void:
	if count != expected:
		_error = "%s counted %d, expected %d" % [variant, count, expected]
