extends RefCounted
## Helpers shared by the benchmark workloads: rounds and medians, processors, and /proc readings.
## Loaded by the workloads, after the runner's first frame, so extension classes can be typed here.

## Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream kernel).
const TICKS_PER_SECOND := 100


## How many counted rounds each workload runs.
static func rounds(quick: bool) -> int:
	return 3 if quick else 5


## Runs [param rounds] rounds of every measurement in [param measures] (Callables returning one
## sample, e.g. ns per item). Each round rotates which runs first, so no side always runs on a
## warmer (or colder) machine; a first round warms threads, caches and allocators up and is not
## counted. Returns one Array of samples per measurement, in the order of [param measures].
## A measurement may await (e.g. frames that run what it queued), so call it with [code]await[/code].
static func alternate(rounds: int, measures: Array[Callable]) -> Array:
	var samples := []
	for measure in measures:
		samples.append([])
	for round_index in rounds + 1:
		for k in measures.size():
			var index := (round_index + k) % measures.size()
			var sample: float = await measures[index].call()
			if round_index > 0:
				samples[index].append(sample)
	return samples


static func median(values: Array) -> float:
	var sorted := values.duplicate()
	sorted.sort()
	var n := sorted.size()
	if n % 2 == 1:
		return sorted[n / 2]
	return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0


## Nanoseconds per item for [param items] items done in [param usec] microseconds.
static func ns_per(usec: int, items: int) -> float:
	return usec * 1000.0 / items


## What a workload returns to the runner (or one of the rows it returns). [param threadkit] and
## [param builtin] are in [param unit] (null when that side has no number); [param value] is the
## figure judged against [param target] ("<=0.5", ">=1.8", "<1"; xtask does the judging), named by
## [param metric]. A workload returning several rows names each by its [param suffix]: the row is
## then [code]<workload>_<suffix>[/code].
static func result(unit: String, threadkit: Variant, builtin: Variant, metric: String,
		value: Variant, target: String, extra: String, suffix := "") -> Dictionary:
	return {"unit": unit, "threadkit": threadkit, "builtin": builtin, "metric": metric,
			"value": value, "target": target, "extra": extra, "suffix": suffix}


## A workload whose results were wrong: the runner prints FAIL and exits 1.
static func failure(message: String) -> Dictionary:
	return {"error": message}


## An AsyncTaskProcessor in the tree with [param workers] workers (autostart starts them in _ready).
static func start_processor(tree: SceneTree, workers: int) -> AsyncTaskProcessor:
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = workers
	processor.autostart = true
	tree.root.add_child(processor)
	return processor


## Removes [param processor] from the tree (which stops and joins its workers) and frees it.
static func free_processor(processor: AsyncTaskProcessor) -> void:
	processor.get_parent().remove_child(processor)
	processor.free()


## A /proc file's text. Line by line: /proc files report a length of 0, so whole-file reads
## (FileAccess.get_file_as_string) come back empty.
static func read_proc(path: String) -> String:
	var file := FileAccess.open(path, FileAccess.READ)
	if file == null:
		return ""
	var text := ""
	while not file.eof_reached():
		text += file.get_line() + "\n"
	return text


## User + system CPU time, in ticks, from a /proc .../stat file (the whole process or one thread).
static func cpu_ticks(stat_path := "/proc/self/stat") -> int:
	var stat := read_proc(stat_path)
	# Field 2 (the name) is in parentheses and may hold spaces: count fields after the last ')'.
	# There, index 0 is field 3 (state), so utime (field 14) is 11 and stime (15) is 12.
	var fields := stat.substr(stat.rfind(")") + 2).split(" ")
	if fields.size() < 13:
		return -1
	return fields[11].to_int() + fields[12].to_int()


## CPU ticks of this process's threads whose name starts with [param prefix].
static func thread_ticks(prefix: String) -> int:
	var total := 0
	for tid in DirAccess.get_directories_at("/proc/self/task"):
		var dir := "/proc/self/task/" + tid
		if read_proc(dir + "/comm").begins_with(prefix):
			total += cpu_ticks(dir + "/stat")
	return total


## Resident set size in KiB, from /proc/self/status (-1 if unreadable).
static func rss_kib() -> int:
	for line in read_proc("/proc/self/status").split("\n"):
		if line.begins_with("VmRSS:"):
			return line.trim_prefix("VmRSS:").strip_edges().trim_suffix("kB").strip_edges().to_int()
	return -1


## Runs [param body] on [param count] new Threads at once and joins them: {usec: from the first
## start to the last join, returns: what each thread's body returned, in start order}.
static func time_threads(count: int, body: Callable) -> Dictionary:
	var started := Time.get_ticks_usec()
	var running: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body)
		running.append(thread)
	var returns := []
	for thread in running:
		returns.append(thread.wait_to_finish())
	return {"usec": Time.get_ticks_usec() - started, "returns": returns}
