extends RefCounted
## floor: a direct Callable.call of a no-op on the main thread. Handing work to another thread and
## back can never cost less per item than this call, so it is the physical limit for the task
## workloads. One number only: there is nothing to compare it with.

const Support := preload("res://bench/support.gd")


func _noop() -> int:
	return 1


func run(_tree: SceneTree, quick: bool) -> Dictionary:
	var calls := 200_000 if quick else 1_000_000
	var noop := _noop
	var call_loop := func() -> float:
		var started := Time.get_ticks_usec()
		for i in calls:
			noop.call()
		return Support.ns_per(Time.get_ticks_usec() - started, calls)
	# The bare loop, to show how much of the floor is GDScript's own `for`.
	var empty_loop := func() -> float:
		var started := Time.get_ticks_usec()
		for i in calls:
			pass
		return Support.ns_per(Time.get_ticks_usec() - started, calls)
	var samples := await Support.alternate(Support.rounds(quick), [call_loop, empty_loop])
	var ns := Support.median(samples[0])
	return Support.result("ns/call", null, ns, "", null, "",
			"Callable.call of a no-op on the main thread (an empty GDScript loop iteration: %.1f ns); median of %d rounds of %d calls"
			% [Support.median(samples[1]), samples[0].size(), calls])
