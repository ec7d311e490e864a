extends SceneTree
## Run by `cargo xtask test` in a Godot of its own: quits while a task ignores
## AsyncTaskProcessor.is_cancelled() for 2.5 s, far past stop_timeout_msec (0.3 s). Godot would
## crash freeing the task's script under it (it did: a double free, exit 134); instead the
## processor's free waits for it, warning every second with the task's id and method, and Godot
## exits 0. The task itself prints the PASS line at its end, after the quit began: that it is
## printed at all shows the quit waited for the task. xtask checks that line, the exit, the warning
## (`blind_work`), and that nothing leaked.

const BLIND_MSEC := 2500


func _initialize() -> void:
	_quit_while_blind()


func _quit_while_blind() -> void:
	await process_frame
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 1
	processor.stop_timeout_msec = 300
	root.add_child(processor)
	var started := Semaphore.new()
	processor.submit_task(blind_work.bind(started))
	started.wait()
	print("quitting while a task ignores cancellation for %d ms" % BLIND_MSEC)
	quit()


func blind_work(started: Semaphore) -> int:
	started.post()
	var until := Time.get_ticks_msec() + BLIND_MSEC
	while Time.get_ticks_msec() < until:
		OS.delay_usec(1000)
	print("PASS quit_with_a_blind_task: the quit waited for the task, which ignored cancellation for %d ms and returned" % BLIND_MSEC)
	return 1
