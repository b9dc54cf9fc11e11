def main():
    print("pyrunc: not yet")
    return 1
