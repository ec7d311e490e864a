class_name DemoDeadlockSection
extends DemoSection
## Demo section: two threads move money between two accounts, each locking its source and then
## its destination. In opposite directions that order deadlocks; ThreadSafetyTester detects it
## (a lock timeout plus who holds what), backs off and recovers. Locking in one global order
## never deadlocks. The total is conserved either way.

## How long a transfer waits for its second lock before it reports a deadlock and backs off
## (headless, and the spin box's start value).
@export_range(10, 2000, 10, "suffix:ms") var lock_timeout_msec := 100
## How many of the detector's reports the interactive view lists.
@export_range(0, 50) var reports_shown := 5

@onready var _timeout: SpinBox = %Timeout
@onready var _report: RichTextLabel = %Report


## Headless: unordered then ordered. Returns {headers, rows, ok, notes} (notes: the detector's
## reports).
func run_headless(_host: Node) -> Dictionary:
	var tester := ThreadSafetyTester.new()
	var rows := []
	var ok := true
	var reports: Array = []
	for ordered: bool in [false, true]:
		var r := tester.run_deadlock_demo(ordered, lock_timeout_msec)
		ok = ok and _holds(r, ordered)
		var check: String
		if ordered:
			check = "no deadlock possible" if r.deadlocks_detected == 0 else "WRONG: a deadlock in ordered mode"
		else:
			check = "detected, backed off, recovered" if r.deadlocks_detected >= 1 else "WRONG: nothing detected"
			reports = r.reports
		if not r.conserved:
			check = "WRONG: money created or lost"
		rows.append(["ordered (by id)" if ordered else "source, then destination",
				"%d / %d" % [r.transfers_done, r.transfers_expected], r.deadlocks_detected,
				"%d -> %d" % [r.total_before, r.total_after], "%.1f" % (r.duration_us / 1000.0), check])
	var notes := reports.map(func(report: String) -> String: return "detector: " + report)
	return {"headers": ["locking", "transfers", "deadlocks", "total", "ms", "check"], "rows": rows,
			"ok": ok, "notes": notes}


## True when run [param r] did what its locking order promises: every transfer done, the total
## conserved, and deadlocks detected only (and always) when the order was not global.
static func _holds(r: Dictionary, ordered: bool) -> bool:
	var detected: bool = r.deadlocks_detected >= 1
	return r.completed and r.conserved and detected != ordered


## Interactive: runs the deadlocking order once.
func _ready() -> void:
	super()
	_timeout.value = lock_timeout_msec
	_run(false)


func _on_unordered_pressed() -> void:
	_run(false)


func _on_ordered_pressed() -> void:
	_run(true)


func _run(ordered: bool) -> void:
	var r := ThreadSafetyTester.new().run_deadlock_demo(ordered, int(_timeout.value))
	var lines := PackedStringArray([
		"[b]%s[/b]: %d of %d transfers in %.1f ms" % ["Ordered locking" if ordered else "Source, then destination",
				r.transfers_done, r.transfers_expected, r.duration_us / 1000.0],
		"deadlocks detected: %d" % r.deadlocks_detected,
		"total balance: %d before, %d after (%s)" % [r.total_before, r.total_after,
				"[color=green]conserved[/color]" if r.conserved else "[color=red]NOT conserved[/color]"]])
	for report: String in r.reports.slice(0, reports_shown):
		lines.append("[color=orange]%s[/color]" % report)
	if r.reports.size() > reports_shown:
		lines.append("... and %d more" % (r.reports.size() - reports_shown))
	_report.text = "\n".join(lines)
	run_finished.emit(_holds(r, ordered))
