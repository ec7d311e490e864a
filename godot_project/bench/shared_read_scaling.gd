extends RefCounted
## shared_read_scaling: how many times as many SharedResource reads per second 2 reader threads
## get as 1 (the same measurement as shared_reads; 2.0 would be perfect on 2 cores). The builtin
## column is the same figure for a Mutex-guarded Dictionary, which serialises its readers.

const Support := preload("res://bench/support.gd")
const SharedReads := preload("res://bench/shared_reads.gd")


func run(_tree: SceneTree, quick: bool) -> Dictionary:
	var m := await SharedReads.new().measure(quick)
	if not m.error.is_empty():
		return Support.failure(m.error)
	var shared_speedup: float = m.shared_1 / m.shared_2
	var mutex_speedup: float = m.mutex_1 / m.mutex_2
	return Support.result("x", shared_speedup, mutex_speedup, "speedup", shared_speedup, ">=1.7",
			"2 reader threads vs 1, %d reads per thread; ns/read 1 thread %.0f, 2 threads %.0f"
			% [m.per_thread, m.shared_1, m.shared_2])
