extends RefCounted
## parallel_speedup: one CPU-bound GDScript job (a small Mandelbrot image) split into CHUNKS bands
## of rows, run on an AsyncTaskProcessor with 1 worker and on one with 2: the speedup is what the
## second worker buys. WorkerThreadPool.add_group_task runs the same job for comparison (as a high
## priority group: WorkerThreadPool gives low-priority work, its default, only a share of its
## threads, on 2 cores just one; that default is reported too), and so do 1 and 2 plain Threads:
## their speedup is what the machine allowed in the same rounds (on a shared machine another
## tenant's load shows there too).
##
## The job is float arithmetic on locals only. (Calls such as sqrt() on an int argument go through
## a slower, shared path in GDScript and stop scaling across threads, which would measure GDScript
## rather than the pool.) While the tasks run, the main thread blocks in wait_all(), delivering each
## result as it arrives, instead of spinning on process_completed(): on a 2-core machine a spinning
## main thread would take a core from the two workers. WorkerThreadPool's wait blocks too.

const Support := preload("res://bench/support.gd")
const CHUNKS := 16
const MAX_ITERATIONS := 64
## How long the main thread sleeps when a delivery found nothing, in microseconds.

var _width := 0
var _height := 0
var _sums := []
var _done := 0
var _expected := []
var _error := ""


## The job's unit: the Mandelbrot iteration counts of band [param chunk]'s rows, summed.
func _band(chunk: int) -> int:
	var total := 0
	var rows := _height / CHUNKS
	for py in range(chunk * rows, (chunk + 1) * rows):
		var cy := -1.2 + 2.4 * py / _height
		for px in _width:
			var cx := -2.2 + 3.2 * px / _width
			var x := 0.0
			var y := 0.0
			var k := 0
			while k < MAX_ITERATIONS and x * x + y * y <= 4.0:
				var next_x := x * x - y * y + cx
				y = 2.0 * x * y + cy
				x = next_x
				k += 1
			total += k
	return total


func run(tree: SceneTree, quick: bool) -> Dictionary:
	_width = 128 if quick else 256
	_height = 96 if quick else 192
	# The reference, on the main thread: a band's sum is the same on any thread.
	var started := Time.get_ticks_usec()
	for chunk in CHUNKS:
		_expected.append(_band(chunk))
	var main_ms := (Time.get_ticks_usec() - started) / 1000.0
	var one := Support.start_processor(tree, 1)
	var two := Support.start_processor(tree, 2)
	var samples := await Support.alternate(Support.rounds(quick), [
		func() -> float: return _on_processor(one, "1 worker"),
		func() -> float: return _on_processor(two, "2 workers"),
		func() -> float: return _on_worker_thread_pool(true),
		func() -> float: return _on_worker_thread_pool(false),
		func() -> float: return _on_threads(1),
		func() -> float: return _on_threads(2),
	])
	Support.free_processor(one)
	Support.free_processor(two)
	if not _error.is_empty():
		return Support.failure(_error)
	var medians := samples.map(Support.median)
	var one_ms: float = medians[0]
	var two_ms: float = medians[1]
	var pool_ms: float = medians[2]
	return Support.result("ms/job", two_ms, pool_ms, "speedup", one_ms / two_ms, ">=1.8",
			"AsyncTaskProcessor 1 worker %.1f ms, 2 workers %.1f ms; WorkerThreadPool.add_group_task high priority %.1f ms (default low priority %.1f ms); plain Threads 1: %.1f ms, 2: %.1f ms (speedup %.2fx: what the machine allowed); main thread alone %.1f ms; %dx%d Mandelbrot in %d bands, sums checked exact"
			% [one_ms, two_ms, pool_ms, medians[3], medians[4], medians[5],
				medians[4] / medians[5], main_ms, _width, _height, CHUNKS])


## ms for the job on [param processor]: a task per band, its callback stores the sum.
func _on_processor(processor: AsyncTaskProcessor, variant: String) -> float:
	_reset()
	var started := Time.get_ticks_usec()
	for chunk in CHUNKS:
		processor.submit_task(_band.bind(chunk), func(sum: int) -> void:
			_sums[chunk] = sum
			_done += 1)
	# Blocks (no polling) and delivers each completion as it arrives.
	if not processor.wait_all(-1):
		_error = "%s: wait_all did not finish" % variant
	var ms := (Time.get_ticks_usec() - started) / 1000.0
	_check(variant)
	return ms


## ms for the job as one WorkerThreadPool group task (each index writes its own slot).
func _on_worker_thread_pool(high_priority: bool) -> float:
	_reset()
	var started := Time.get_ticks_usec()
	var group := WorkerThreadPool.add_group_task(func(chunk: int) -> void:
		_sums[chunk] = _band(chunk), CHUNKS, -1, high_priority)
	WorkerThreadPool.wait_for_group_task_completion(group)
	var ms := (Time.get_ticks_usec() - started) / 1000.0
	_done = CHUNKS
	_check("WorkerThreadPool")
	return ms


## ms for the job on [param count] plain Threads, band i going to thread i % count.
func _on_threads(count: int) -> float:
	_reset()
	var started := Time.get_ticks_usec()
	var threads: Array[Thread] = []
	for t in count:
		var thread := Thread.new()
		thread.start(func() -> void:
			for chunk in range(t, CHUNKS, count):
				_sums[chunk] = _band(chunk))
		threads.append(thread)
	for thread in threads:
		thread.wait_to_finish()
	var ms := (Time.get_ticks_usec() - started) / 1000.0
	_done = CHUNKS
	_check("%d Threads" % count)
	return ms


func _reset() -> void:
	_done = 0
	_sums.resize(CHUNKS)
	_sums.fill(0)


func _check(variant: String) -> void:
	if _done != CHUNKS or _sums != _expected:
		_error = "%s: sums %s, expected %s" % [variant, _sums, _expected]
