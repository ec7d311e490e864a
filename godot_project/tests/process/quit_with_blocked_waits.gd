extends SceneTree
## Run by `cargo xtask test` in a Godot of its own: quits while threads are blocked in ThreadKit.
## - Two Threads call MainThreadDispatcher.call_blocking() in a loop (timeout -1, and the
##   default), so that at quit each is blocked in one; the game joins them in `_exit_tree`, as
##   Godot's docs advise. Quitting ends their calls with null, so they return and the joins end.
## - A task pops from a ThreadSafeQueue that nobody closes, and a Thread does the same; another
##   task and Thread wait in ThreadSafeQueue.select(), and a Thread in a `for` loop over the queue
##   (holding a ThreadLocal value, as does the main thread); a task and a Thread push to a full
##   queue nobody pops.
## Godot must exit 0 within seconds (no 5 s freeze), with no crash and nothing leaked at exit.

class Level extends Node:
	var threads: Array[Thread] = []
	var queue := ThreadSafeQueue.create()
	var full := ThreadSafeQueue.create(1)
	var calls := AtomicCounter.new()
	## Threads and tasks inside a blocking call, or about to enter it.
	var blocked := AtomicCounter.new()

	func _exit_tree() -> void:
		for thread in threads:
			thread.wait_to_finish()

	func call_forever(timeout_ms: int) -> void:
		while MainThreadDispatcher.call_blocking(get_instance_id, timeout_ms) != null:
			calls.increment()

	func pop_forever() -> void:
		while queue.pop() != null:
			pass

	func select_forever() -> void:
		while ThreadSafeQueue.select([queue, ThreadSafeQueue.create_rendezvous()])[0] != -1:
			pass

	func push_forever() -> void:
		blocked.increment()
		while full.push(1):
			pass

	func iterate_forever() -> void:
		scratch.get_value()
		for value in queue:
			pass

	var scratch := ThreadLocal.create(func() -> RefCounted: return RefCounted.new())


func _initialize() -> void:
	_quit_while_blocked()


func _quit_while_blocked() -> void:
	await process_frame
	var level := Level.new()
	root.add_child(level)
	var processor := AsyncTaskProcessor.new()
	processor.worker_count = 3
	level.add_child(processor)
	processor.submit_task(level.pop_forever)
	processor.submit_task(level.select_forever)
	processor.submit_task(level.push_forever)
	level.scratch.get_value()
	for call in [level.call_forever.bind(-1), level.call_forever.bind(1000), level.pop_forever,
			level.select_forever, level.iterate_forever, level.push_forever]:
		var thread := Thread.new()
		thread.start(call)
		level.threads.append(thread)
	while level.calls.get_count() < 20 or level.blocked.get_count() < 2:
		await process_frame
	print("PASS quit_with_blocked_waits: quitting with threads in call_blocking(), pop(), push(), select() and a for loop, after %d calls" % level.calls.get_count())
	quit()
