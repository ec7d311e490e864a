extends SceneTree
## Run by `cargo xtask test` in a Godot of its own (`-s`): quits at once while workers are busy,
## two with tasks that never look at AsyncTaskProcessor.is_cancelled() and one with a task that
## would run forever but does, with tasks queued behind them and work waiting for the main
## thread. The check passes when Godot then exits 0 within its limit, with no crash and nothing
## "leaked at exit". Prints `PASS quit_with_busy_workers` just before quitting.

const BLIND := 2


func _initialize() -> void:
	_quit_while_busy()


func _quit_while_busy() -> void:
	await process_frame
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = BLIND + 1
	root.add_child(processor)
	var started := AtomicCounter.new()
	for i in BLIND:
		# Half a second of work, blind to cancellation: quitting waits for it (stop_timeout_msec).
		processor.submit_task(func() -> int:
			started.increment()
			for n in 500:
				OS.delay_usec(1000)
			return i, func(_result: int) -> void: pass)
	var forever := processor.run(func() -> void:
		started.increment()
		while not AsyncTaskProcessor.is_cancelled():
			OS.delay_usec(200))
	for i in 100:
		processor.submit_task(func() -> int: return i, func(_result: int) -> void: pass)
	for i in 100:
		MainThreadDispatcher.dispatch(processor.get_stats)
	while started.get_count() < BLIND + 1:
		OS.delay_usec(100)
	print("PASS quit_with_busy_workers: quitting with %d tasks running, %d queued, %s pending on the main thread"
			% [processor.get_stats().running, processor.get_stats().pending, MainThreadDispatcher.pending_count()])
	forever = null
	quit()
