extends RefCounted
## Demo section: two threads move money between two accounts, each locking its source and then
## its destination. In opposite directions that order deadlocks; ThreadSafetyTester detects it
## (a lock timeout plus who holds what), backs off and recovers. Locking in one global order
## never deadlocks. The total is conserved either way.

const TITLE := "Deadlock"
const LESSON := "Two threads that take the same two locks in opposite orders can each wait for the other forever. Take locks in one global order (here: by account id) and it cannot happen; a timeout on the lock can detect it and back off."
const TIMEOUT_MS := 100

var _timeout: SpinBox
var _report: RichTextLabel


## Headless: unordered then ordered. Returns {headers, rows, ok, notes} (notes: the detector's
## reports).
func run_headless(_host: Node) -> Dictionary:
	var tester := ThreadSafetyTester.new()
	var rows := []
	var ok := true
	var reports: Array = []
	for ordered in [false, true]:
		var r := tester.run_deadlock_demo(ordered, TIMEOUT_MS)
		var check: String
		if ordered:
			ok = ok and r.completed and r.conserved and r.deadlocks_detected == 0
			check = "no deadlock possible" if r.deadlocks_detected == 0 else "WRONG: a deadlock in ordered mode"
		else:
			ok = ok and r.completed and r.conserved and r.deadlocks_detected >= 1
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


## Interactive: run either way with a chosen lock timeout and read the detector's reports.
func build_ui(parent: Control) -> void:
	var controls := HBoxContainer.new()
	controls.add_theme_constant_override("separation", 12)
	parent.add_child(controls)
	for spec in [["Source, then destination (deadlocks)", false], ["Ordered by account id", true]]:
		var button := Button.new()
		button.text = spec[0]
		button.pressed.connect(_run.bind(spec[1]))
		controls.add_child(button)
	var label := Label.new()
	label.text = "Lock timeout (ms):"
	controls.add_child(label)
	_timeout = SpinBox.new()
	_timeout.min_value = 10
	_timeout.max_value = 2000
	_timeout.step = 10
	_timeout.value = TIMEOUT_MS
	controls.add_child(_timeout)
	_report = RichTextLabel.new()
	_report.bbcode_enabled = true
	_report.fit_content = true
	_report.custom_minimum_size.y = 240
	parent.add_child(_report)
	_run(false)


func _run(ordered: bool) -> void:
	var r := ThreadSafetyTester.new().run_deadlock_demo(ordered, int(_timeout.value))
	var lines := PackedStringArray([
		"[b]%s[/b]: %d of %d transfers in %.1f ms" % ["Ordered locking" if ordered else "Source, then destination",
				r.transfers_done, r.transfers_expected, r.duration_us / 1000.0],
		"deadlocks detected: %d" % r.deadlocks_detected,
		"total balance: %d before, %d after (%s)" % [r.total_before, r.total_after,
				"[color=green]conserved[/color]" if r.conserved else "[color=red]NOT conserved[/color]"]])
	for report: String in r.reports.slice(0, 5):
		lines.append("[color=orange]%s[/color]" % report)
	if r.reports.size() > 5:
		lines.append("... and %d more" % (r.reports.size() - 5))
	_report.text = "\n".join(lines)
