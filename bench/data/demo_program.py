def remove_occ(s, ch):
    """Remove the first and last occurrence of ch from s (MBPP task 11)."""
    first = s.find(ch)
    if first != -1:
        s = s[:first] + s[first + 1 :]
    last = s.rfind(ch)
    if last != -1:
        s = s[:last] + s[last + 1 :]
    return s
