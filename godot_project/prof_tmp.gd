extends SceneTree
func _t(label: String, f: Callable) -> void:
	var t0 := Time.get_ticks_usec()
	f.call()
	print("%s %.1f ns" % [label, (Time.get_ticks_usec() - t0) / 1000.0])
func _initialize() -> void:
	await process_frame
	var r := SharedResource.new()
	r.write_value("k", 5)
	var c := AtomicCounter.new()
	var q := ThreadSafeQueue.new()
	var m := Mutex.new()
	var d := {"k": 5}
	for rep in 2:
		_t("read_value", func(): for i in 1_000_000: r.read_value("k"))
		_t("has_value", func(): for i in 1_000_000: r.has_value("k"))
		_t("get_version", func(): for i in 1_000_000: r.get_version())
		_t("increment", func(): for i in 1_000_000: c.increment())
		_t("try_pop", func(): for i in 1_000_000: q.try_pop())
		_t("static", func(): for i in 1_000_000: AsyncTaskProcessor.is_cancelled())
		_t("mutex dict", func():
			for i in 1_000_000:
				m.lock()
				var v = d["k"]
				m.unlock())
	quit()
