extends "res://tests/support/test_case.gd"
## SharedResource: every method, copies in and out, misuse, and readers and writers on threads.


func test_write_read_has_erase_size_keys_clear() -> void:
	var store := SharedResource.new()
	assert_eq(store.read_value("hp"), null, "missing key, no default")
	assert_eq(store.read_value("hp", 7), 7, "missing key, default")
	store.write_value("hp", 10)
	store.write_value(3, "three")
	assert_eq(store.read_value("hp", 7), 10)
	assert_eq(store.read_value(&"hp"), 10, "a StringName is the same key as its String")
	assert_eq(store.read_value(3), "three")
	assert_true(store.has_value("hp") and store.has_value(3) and not store.has_value("mp"))
	assert_eq(store.size(), 2)
	var keys := store.keys()
	assert_true(keys.size() == 2 and 3 in keys and "hp" in keys, "keys: %s" % [keys])
	assert_true(store.erase_value("hp"))
	assert_false(store.erase_value("hp"), "already gone")
	assert_eq(store.size(), 1)
	store.clear()
	assert_eq([store.size(), store.keys()], [0, []])
	assert_eq(str(store), "SharedResource(size=0, version=4)")


func test_batch_update_and_snapshot() -> void:
	var store := SharedResource.new()
	store.batch_update({"gold": 100, "wood": 5, 1: [1, 2]})
	assert_eq(store.get_all_data(), {"gold": 100, "wood": 5, 1: [1, 2]})
	assert_eq(store.get_version(), 1, "one batch is one change")


func test_arrays_and_dictionaries_are_copied_in_and_out() -> void:
	var store := SharedResource.new()
	var items := [1, {"nested": [2]}]
	store.write_value("items", items)
	items.append(99)
	items[1]["nested"].append(3)
	assert_eq(store.read_value("items"), [1, {"nested": [2]}], "the caller's later changes stay the caller's")
	var out: Array = store.read_value("items")
	out[1]["nested"].clear()
	assert_eq(store.read_value("items"), [1, {"nested": [2]}], "changing a returned copy changes nothing")
	var all := store.get_all_data()
	all["items"].clear()
	assert_eq(store.read_value("items"), [1, {"nested": [2]}], "snapshot values are copies too")
	var typed: Array[int] = [1, 2]
	store.write_value("typed", typed)
	assert_eq(store.read_value("typed").get_typed_builtin(), TYPE_INT, "typed arrays stay typed")
	var kept := []
	store.update_value("items", func(old: Array) -> Array:
		kept = old
		return [5])
	kept.append("late")
	assert_eq(store.read_value("items"), [5], "the Callable gets a copy too")


func test_update_value_is_a_read_modify_write() -> void:
	var store := SharedResource.new()
	assert_eq(store.update_value("n", func(old): return 1 if old == null else old + 1), 1)
	assert_eq(store.update_value("n", func(old): return old + 1), 2)
	assert_eq(store.read_value("n"), 2)
	assert_eq(store.get_version(), 2)


func test_update_value_that_godot_cannot_call_changes_nothing() -> void:
	var store := SharedResource.new()
	store.write_value("n", 1)
	expect_error("SharedResource.update_value: Godot could not call it")
	assert_eq(store.update_value("n", func(): return 5), null, "takes no argument")
	expect_error("SharedResource.update_value: the Callable is not valid")
	assert_eq(store.update_value("n", Callable()), null)
	assert_eq([store.read_value("n"), store.get_version()], [1, 1])


func test_update_value_callables_read_the_old_value_and_their_changes_are_refused() -> void:
	var store := SharedResource.new()
	store.write_value("a", 1)
	var seen := []
	expect_error("SharedResource.write_value: called from inside update_value's Callable on the same SharedResource")
	expect_error("SharedResource.update_value: called from inside update_value's Callable")
	var other := SharedResource.new()
	var result = store.update_value("a", func(old):
		seen.append(store.read_value("a", "refused"))
		store.write_value("b", 2)
		seen.append(store.update_value("a", func(x): return x))
		other.write_value("x", old)
		return old + 10)
	assert_eq(result, 11)
	assert_eq(seen, [1, null], "reads see the old value; the nested change is refused")
	assert_eq([store.read_value("a"), store.has_value("b"), other.read_value("x")], [11, false, 1])


func test_readers_on_other_threads_are_not_held_up_by_an_update_value_callable() -> void:
	var store := SharedResource.new()
	store.write_value("a", 1)
	var inside := Semaphore.new()
	var release := Semaphore.new()
	var updater := Thread.new()
	updater.start(func() -> Variant:
		return store.update_value("a", func(old: int) -> int:
			inside.post()
			release.wait()
			return old + 1))
	inside.wait()
	# The Callable is running: reads answer at once, with the value before the update.
	var during := [store.read_value("a"), store.size(), store.keys(), store.get_all_data()]
	release.post()
	assert_eq(updater.wait_to_finish(), 2)
	assert_eq(during, [1, 1, ["a"], {"a": 1}])
	assert_eq(store.read_value("a"), 2)


func test_compare_and_set() -> void:
	var store := SharedResource.new()
	assert_true(store.compare_and_set("k", null, 1), "a missing key equals null")
	assert_false(store.compare_and_set("k", null, 2))
	assert_false(store.compare_and_set("k", 5, 2))
	assert_true(store.compare_and_set("k", 1, [1]))
	assert_true(store.compare_and_set("k", [1], "done"), "compared with ==, so arrays by content")
	assert_eq([store.read_value("k"), store.get_version()], ["done", 3])


func test_access_statistics_count_reads_writes_and_misses() -> void:
	var store := SharedResource.new()
	store.write_value("a", 1)
	store.batch_update({"a": 2, "b": 3})
	store.read_value("a")
	store.read_value("a")
	store.read_value("zzz")
	store.compare_and_set("b", 3, 4)
	assert_eq(store.get_access_statistics(), {
		"keys": {"a": {"reads": 2, "writes": 2}, "b": {"reads": 0, "writes": 2}},
		"total_reads": 2, "total_writes": 4, "misses": 1, "version": 3})


func test_bad_keys_are_refused_and_store_nothing() -> void:
	var store := SharedResource.new()
	expect_error("SharedResource.write_value: a key must be a String, StringName or int, not Vector2")
	store.write_value(Vector2.ONE, 1)
	expect_error("SharedResource.batch_update: a key must be a String, StringName or int")
	store.batch_update({"ok": 1, 2.5: 2})
	expect_error("SharedResource.read_value: a key must be")
	assert_eq(store.read_value(null, "default"), "default")
	assert_eq([store.size(), store.get_version()], [0, 0], "a batch with one bad key stores none of it")


func test_four_writers_and_four_readers_never_see_a_half_batch() -> void:
	var store := SharedResource.new()
	const TOTAL := 1000
	const OPS := 3000
	store.batch_update({"left": TOTAL, "right": 0})
	var torn := AtomicCounter.new()
	var results := run_threads(8, func(i: int) -> int:
		for n in OPS:
			if i < 4:
				var left := (i * OPS + n) % (TOTAL + 1)
				store.batch_update({"left": left, "right": TOTAL - left})
			else:
				var snapshot := store.get_all_data()
				if snapshot["left"] + snapshot["right"] != TOTAL:
					torn.increment()
		return i)
	assert_eq(results, [0, 1, 2, 3, 4, 5, 6, 7])
	assert_eq(torn.get_count(), 0, "every read saw whole batches")
	assert_eq(store.get_version(), 1 + 4 * OPS)


func test_updates_from_four_threads_lose_nothing() -> void:
	var store := SharedResource.new()
	store.write_value("n", 0)
	run_threads(4, func(_i: int) -> void:
		for n in 2500:
			store.update_value("n", func(old: int) -> int: return old + 1))
	assert_eq(store.read_value("n"), 10000)
	assert_eq(store.get_access_statistics()["keys"]["n"]["writes"], 10001)
