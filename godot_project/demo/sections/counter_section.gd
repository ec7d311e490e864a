extends RefCounted
## Demo section 1: several threads count to the same total three ways.

const TITLE := "Counters"
const LESSON := "A shared int's += is a read then a write: threads overwrite each other's updates. AtomicCounter never loses one, without a lock."


## A plain GDScript object: threads do `box.value += 1` on it, as naive code would.
class Box:
	var value := 0


## Runs [param threads] threads doing [param increments] increments each, per variant.
## Returns {rows: [{variant, expected, actual, msec, ok, note}], ok}.
func run(threads: int, increments: int) -> Dictionary:
	var expected := threads * increments
	var rows := []

	var box := Box.new()
	var msec := _time_threads(threads, func() -> void:
		for i in increments:
			box.value += 1)
	var lost := expected - box.value
	rows.append(_row("plain int +=", expected, box.value, msec, true,
			"lost %d updates" % lost if lost > 0 else "no loss this time: it is luck, run again"))

	var counter := AtomicCounter.new()
	msec = _time_threads(threads, func() -> void:
		for i in increments:
			counter.increment())
	rows.append(_row("AtomicCounter", expected, counter.get_count(), msec,
			counter.get_count() == expected, "exact"))

	var mutex := Mutex.new()
	var guarded := Box.new()
	msec = _time_threads(threads, func() -> void:
		for i in increments:
			mutex.lock()
			guarded.value += 1
			mutex.unlock())
	rows.append(_row("Mutex + int", expected, guarded.value, msec,
			guarded.value == expected, "exact, but every increment takes the lock"))

	var ok := rows.all(func(row: Dictionary) -> bool: return row.ok)
	return {"rows": rows, "ok": ok}


func _row(variant: String, expected: int, actual: int, msec: float, ok: bool, note: String) -> Dictionary:
	return {"variant": variant, "expected": expected, "actual": actual, "msec": msec, "ok": ok,
			"note": note if ok else "WRONG: " + note}


func _time_threads(count: int, body: Callable) -> float:
	var started := Time.get_ticks_usec()
	var threads: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body)
		threads.append(thread)
	for thread in threads:
		thread.wait_to_finish()
	return (Time.get_ticks_usec() - started) / 1000.0
