extends SceneTree
## Benchmark runner: `godot --headless --path godot_project -s res://bench/run_bench.gd
## [-- --filter=TEXT --quick]`. `cargo xtask bench` runs it (release build) and turns its output
## into the table, target/bench/results.json and docs/benchmarks.md.
##
## Each workload is one script in this folder with `func run(tree: SceneTree, quick: bool)`
## returning a Dictionary (support.gd `result` or `failure`), or an Array of `result`s, one per row,
## each named by its suffix. For each, the runner prints `RUN name` (xtask's hang watchdog keys on
## it), then one line per row
## `BENCH name=N unit=U threadkit=X builtin=Y metric=M value=V target=T extra=free text`
## (N is the workload's name, plus `_suffix` for a row of several; no spaces inside values;
## `extra` runs to the end of the line; `n/a` for a missing number), or `FAIL name: why` when a
## workload's results were wrong. Exits 1 if any workload failed.

## In the order they run; the idle and soak workloads come last as they take the longest.
const WORKLOADS := ["floor", "counter", "task_round_trip", "task_latency", "parallel_speedup",
		"dispatch", "shared_reads", "shared_read_scaling", "per_call", "idle_cost", "soak"]


func _initialize() -> void:
	_run_all()


func _run_all() -> void:
	await process_frame  # Extension classes and the tree are ready once the main loop runs.
	var options := _options()
	if options.is_empty():
		quit(2)
		return
	var started := Time.get_ticks_msec()
	var failed := 0
	var ran := 0
	for workload_name: String in WORKLOADS:
		if not options.filter.is_empty() and not options.filter in workload_name:
			continue
		print("RUN ", workload_name)
		var workload: RefCounted = load("res://bench/%s.gd" % workload_name).new()
		var result: Variant = await workload.run(self, options.quick)
		ran += 1
		var rows: Array = result if result is Array else [result]
		var problem := ""
		if rows.is_empty() or rows.any(func(row: Variant) -> bool: return not row is Dictionary):
			problem = "the workload returned no result"
		else:
			for row: Dictionary in rows:
				if row.has("error"):
					problem = row.error
					break
		if problem.is_empty():
			for row: Dictionary in rows:
				print(_bench_line(workload_name, row))
		else:
			# One FAIL and no rows: a workload's rows stand or fall together.
			failed += 1
			print("FAIL %s: %s" % [workload_name, problem])
		workload = null
		await process_frame  # Let anything the workload queued for deletion go.
	print("bench: %d workloads, %d failed, in %.1f s" % [ran, failed,
			(Time.get_ticks_msec() - started) / 1000.0])
	quit(1 if failed > 0 else 0)


## {filter, quick} from the arguments after `--`, or {} (after printing why) for an unknown one.
func _options() -> Dictionary:
	var options := {"filter": "", "quick": false}
	var args := OS.get_cmdline_user_args()
	var i := 0
	while i < args.size():
		var arg := args[i]
		if arg == "--quick":
			options.quick = true
		elif arg.begins_with("--filter="):
			options.filter = arg.trim_prefix("--filter=")
		elif arg == "--filter" and i + 1 < args.size():
			i += 1
			options.filter = args[i]
		else:
			printerr("run_bench.gd: unknown option %s (expected --filter=TEXT or --quick)" % arg)
			return {}
		i += 1
	return options


func _bench_line(workload_name: String, result: Dictionary) -> String:
	var row_name := workload_name
	if not result.suffix.is_empty():
		row_name += "_" + result.suffix
	return "BENCH name=%s unit=%s threadkit=%s builtin=%s metric=%s value=%s target=%s extra=%s" % [
		row_name, _word(result.unit), _number(result.threadkit), _number(result.builtin),
		_word(result.metric), _number(result.value), _word(result.target),
		String(result.extra).replace("\n", " ")]


## Three significant digits or so: enough for numbers this noisy.
static func _number(value: Variant) -> String:
	if value == null:
		return "n/a"
	var x := float(value)
	if absf(x) >= 100.0:
		return "%.0f" % x
	if absf(x) >= 10.0:
		return "%.1f" % x
	return "%.2f" % x


static func _word(text: String) -> String:
	return "n/a" if text.is_empty() else text.replace(" ", "_")
