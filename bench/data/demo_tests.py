assert remove_occ("hello", "l") == "heo"
assert remove_occ("abcda", "a") == "bcd"
assert remove_occ("PHP", "P") == "H"
