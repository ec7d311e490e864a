extends RefCounted
## per_call: what one call costs, ThreadKit beside what a GDScript user would write without it, with
## 1 Thread calling (rows `<call>_1`) and 2 Threads calling at once (`<call>_2`). Both sides run
## the same GDScript loop in the same Threads (1 thread is a Thread too, not the main thread, so
## both rows pay the same thread start), timed from the first start to the last join; a figure is
## that wall time over all calls of all threads, so the ratio is the call itself and 2 threads
## show what sharing the object costs. Every count is checked exact, every round.
##
## - floor: the static #[func] AsyncTaskProcessor.is_cancelled() (outside a task: one thread-local
##   read) vs a GDScript static func. What any call into the extension costs; no call below can
##   cost less.
## - increment: AtomicCounter.increment() vs Mutex.lock(); n += 1; Mutex.unlock().
## - read_value: SharedResource.read_value(key) vs a Dictionary read under a Mutex (16 int keys).
## - dispatch: MainThreadDispatcher.dispatch(noop) vs noop.call_deferred(). The sends are timed;
##   the main thread's frames then run every call (each way its own: ThreadKit's dispatcher node,
##   the message queue flush), and the calls that ran are counted.
## - submit_task: AsyncTaskProcessor.submit_task(task) on 2 workers vs WorkerThreadPool.add_task
##   (default, low priority). The submits are timed, with the workers running tasks meanwhile;
##   then every task is waited for and the runs counted.
## - try_pop: ThreadSafeQueue.try_pop() vs Array.pop_back() under a Mutex, on a queue filled
##   beforehand with exactly the values the threads pop.
##
## Targets are the issue's: increment <=1.0 with 1 thread and <=0.5 with 2, read_value <=0.7 with
## 2, dispatch <=1.0; it sets none for the other rows.

const Support := preload("res://bench/support.gd")
const KEYS := 16
const WORKERS := 2
## Waiting longer than this for queued calls or tasks to run means some never will: fail instead.
const DEADLINE_MSEC := 20_000

## The Mutex-guarded int: a member, as a lambda captures an int local by value.
var _count := 0
## Calls that ran on the main thread (dispatch rows): exact, as only the main thread counts.
var _ran := 0
## Tasks that ran (submit_task rows), under _task_mutex as they run on several workers at once.
var _executed := 0
var _task_mutex := Mutex.new()
var _processor: AsyncTaskProcessor
var _tree: SceneTree
var _error := ""


## The GDScript twin of AsyncTaskProcessor.is_cancelled() outside a task.
static func _is_cancelled() -> bool:
	return false


## What the dispatch rows send to the main thread.
func _noop() -> void:
	_ran += 1


## What the submit_task rows run.
func _task() -> void:
	_task_mutex.lock()
	_executed += 1
	_task_mutex.unlock()


func run(tree: SceneTree, quick: bool) -> Array:
	var calls := 50_000 if quick else 150_000
	# A submit costs microseconds, not tens of nanoseconds: fewer keep the rows equally short.
	var submits := 2_000 if quick else 8_000
	_tree = tree
	_processor = Support.start_processor(tree, WORKERS)
	var comparisons: Array[Dictionary] = [
		{"name": "floor", "threadkit": _floor_threadkit, "builtin": _floor_builtin,
			"calls": calls, "targets": ["", ""],
			"what": "static #[func] AsyncTaskProcessor.is_cancelled() vs a GDScript static func"},
		{"name": "increment", "threadkit": _increment_threadkit, "builtin": _increment_builtin,
			"calls": calls, "targets": ["<=1.0", "<=0.5"],
			"what": "AtomicCounter.increment() vs Mutex lock, += 1, unlock"},
		{"name": "read_value", "threadkit": _read_threadkit, "builtin": _read_builtin,
			"calls": calls, "targets": ["", "<=0.7"],
			"what": "SharedResource.read_value vs Mutex + Dictionary read, %d int keys" % KEYS},
		{"name": "dispatch", "threadkit": _dispatch_threadkit, "builtin": _dispatch_builtin,
			"calls": calls, "targets": ["<=1.0", "<=1.0"],
			"what": "MainThreadDispatcher.dispatch vs Callable.call_deferred, sends timed; every call then run by the frames and counted"},
		{"name": "submit_task", "threadkit": _submit_threadkit, "builtin": _submit_builtin,
			"calls": submits, "targets": ["", ""],
			"what": "AsyncTaskProcessor.submit_task (%d workers) vs WorkerThreadPool.add_task (default, low priority), submits timed while tasks run; every task then waited for and counted" % WORKERS},
		{"name": "try_pop", "threadkit": _try_pop_threadkit, "builtin": _try_pop_builtin,
			"calls": calls, "targets": ["", ""],
			"what": "ThreadSafeQueue.try_pop vs Mutex + Array.pop_back, on a pre-filled queue"},
	]
	var rows := []
	for row in comparisons:
		var threadkit: Callable = row.threadkit
		var builtin: Callable = row.builtin
		var per_thread: int = row.calls
		var samples := await Support.alternate(Support.rounds(quick), [
			threadkit.bind(1, per_thread), builtin.bind(1, per_thread),
			threadkit.bind(2, per_thread), builtin.bind(2, per_thread),
		])
		if not _error.is_empty():
			break
		for k in 2:
			var threads := k + 1
			var tk := Support.median(samples[2 * k])
			var bi := Support.median(samples[2 * k + 1])
			rows.append(Support.result("ns/call", tk, bi, "ratio", tk / bi, row.targets[k],
					"%d thread%s x %d calls, wall time per call; %s; counts checked exact"
					% [threads, "" if threads == 1 else "s", per_thread, row.what],
					"%s_%d" % [row.name, threads]))
	Support.free_processor(_processor)
	if not _error.is_empty():
		return [Support.failure(_error)]
	return rows


func _floor_threadkit(threads: int, per_thread: int) -> float:
	var timed := Support.time_threads(threads, func() -> int:
		var not_cancelled := 0
		for i in per_thread:
			if not AsyncTaskProcessor.is_cancelled():
				not_cancelled += 1
		return not_cancelled)
	_check("AsyncTaskProcessor.is_cancelled() == false", _sum(timed.returns), threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _floor_builtin(threads: int, per_thread: int) -> float:
	var timed := Support.time_threads(threads, func() -> int:
		var not_cancelled := 0
		for i in per_thread:
			if not _is_cancelled():
				not_cancelled += 1
		return not_cancelled)
	_check("GDScript static func == false", _sum(timed.returns), threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _increment_threadkit(threads: int, per_thread: int) -> float:
	var counter := AtomicCounter.new()
	var timed := Support.time_threads(threads, func() -> void:
		for i in per_thread:
			counter.increment())
	_check("AtomicCounter.increment", counter.get_count(), threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _increment_builtin(threads: int, per_thread: int) -> float:
	var mutex := Mutex.new()
	_count = 0
	var timed := Support.time_threads(threads, func() -> void:
		for i in per_thread:
			mutex.lock()
			_count += 1
			mutex.unlock())
	_check("Mutex + int", _count, threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _read_threadkit(threads: int, per_thread: int) -> float:
	var store := SharedResource.new()
	for k in KEYS:
		store.write_value(k, k)
	var timed := Support.time_threads(threads, func() -> int:
		var sum := 0
		for i in per_thread:
			sum += store.read_value(i & (KEYS - 1))
		return sum)
	_check_read_sums("SharedResource.read_value", timed.returns, per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _read_builtin(threads: int, per_thread: int) -> float:
	var mutex := Mutex.new()
	var guarded := {}
	for k in KEYS:
		guarded[k] = k
	var timed := Support.time_threads(threads, func() -> int:
		var sum := 0
		for i in per_thread:
			mutex.lock()
			sum += guarded[i & (KEYS - 1)]
			mutex.unlock()
		return sum)
	_check_read_sums("Mutex + Dictionary", timed.returns, per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


## Each reader read every key per_thread / KEYS times: check its sum.
func _check_read_sums(variant: String, sums: Array, per_thread: int) -> void:
	for sum: int in sums:
		_check(variant + " sum", sum, per_thread / KEYS * (KEYS * (KEYS - 1) / 2))


func _dispatch_threadkit(threads: int, per_thread: int) -> float:
	var noop := _noop
	_ran = 0
	var timed := Support.time_threads(threads, func() -> void:
		for i in per_thread:
			MainThreadDispatcher.dispatch(noop))
	await _frames_until_ran(threads * per_thread)
	_check("MainThreadDispatcher.dispatch: calls ran", _ran, threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _dispatch_builtin(threads: int, per_thread: int) -> float:
	var noop := _noop
	_ran = 0
	var timed := Support.time_threads(threads, func() -> void:
		for i in per_thread:
			noop.call_deferred())
	await _frames_until_ran(threads * per_thread)
	_check("Callable.call_deferred: calls ran", _ran, threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


## Lets frames pass (each runs queued calls) until [param expected] calls ran, or DEADLINE_MSEC.
func _frames_until_ran(expected: int) -> void:
	var started := Time.get_ticks_msec()
	# After a failure the later rounds do not wait again: their figures are not reported.
	while _ran < expected and _error.is_empty() and Time.get_ticks_msec() - started < DEADLINE_MSEC:
		await _tree.process_frame


func _submit_threadkit(threads: int, per_thread: int) -> float:
	var task := _task
	var processor := _processor
	_executed = 0
	var timed := Support.time_threads(threads, func() -> PackedInt64Array:
		var ids := PackedInt64Array()
		ids.resize(per_thread)
		for i in per_thread:
			ids[i] = processor.submit_task(task)
		return ids)
	if not processor.wait_all(DEADLINE_MSEC):
		_fail("AsyncTaskProcessor.wait_all: tasks still unfinished after %d ms" % DEADLINE_MSEC)
	var refused := 0
	for ids: PackedInt64Array in timed.returns:
		refused += ids.count(-1)
	_check("AsyncTaskProcessor.submit_task: refused", refused, 0)
	_check("AsyncTaskProcessor.submit_task: tasks ran", _executed, threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _submit_builtin(threads: int, per_thread: int) -> float:
	var task := _task
	_executed = 0
	var timed := Support.time_threads(threads, func() -> PackedInt64Array:
		var ids := PackedInt64Array()
		ids.resize(per_thread)
		for i in per_thread:
			ids[i] = WorkerThreadPool.add_task(task)
		return ids)
	# Every id must be waited for once: that frees it.
	for ids: PackedInt64Array in timed.returns:
		for id in ids:
			WorkerThreadPool.wait_for_task_completion(id)
	_check("WorkerThreadPool.add_task: tasks ran", _executed, threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _try_pop_threadkit(threads: int, per_thread: int) -> float:
	var queue := ThreadSafeQueue.new()
	for i in threads * per_thread:
		queue.try_push(1)
	var timed := Support.time_threads(threads, func() -> int:
		var popped := 0
		for i in per_thread:
			if queue.try_pop() != null:
				popped += 1
		return popped)
	_check("ThreadSafeQueue.try_pop: popped", _sum(timed.returns), threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


func _try_pop_builtin(threads: int, per_thread: int) -> float:
	var mutex := Mutex.new()
	var array := []
	array.resize(threads * per_thread)
	array.fill(1)
	var timed := Support.time_threads(threads, func() -> int:
		var popped := 0
		for i in per_thread:
			mutex.lock()
			var value: Variant = array.pop_back()
			mutex.unlock()
			if value != null:
				popped += 1
		return popped)
	_check("Mutex + Array.pop_back: popped", _sum(timed.returns), threads * per_thread)
	return Support.ns_per(timed.usec, threads * per_thread)


static func _sum(values: Array) -> int:
	return values.reduce(func(total: int, n: int) -> int: return total + n, 0)


func _check(what: String, count: int, expected: int) -> void:
	if count != expected:
		_fail("%s: %d, expected %d" % [what, count, expected])


## Keeps the first failure: the workload fails with it.
func _fail(message: String) -> void:
	if _error.is_empty():
		_error = message
